// The firmware update page: POST /api/update with the session's CSRF
// token (daemon/web/update.go), upload progress, then the result.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let csrf = "";
  function message(text, kind) { const m = $("message"); m.textContent = text; m.className = kind || ""; }
  async function getJSON(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    try { return { status: r.status, body: await r.json() }; } catch (e) { return { status: r.status, body: null }; }
  }
  async function load() {
    const s = await getJSON("/api/session");
    if (s.status === 200 && s.body) csrf = s.body.csrf;
    const logged = s.body && s.body.logged_in;
    $("update-form").hidden = !logged;
    $("need-login").hidden = !!logged;
    const u = await getJSON("/api/update/status");
    if (u.status === 200 && u.body) {
      const st = u.body;
      $("version").textContent = st.version;
      $("running").textContent = st.version + " in slot " + (st.slot || "-") + (st.trial ? " (trial, not committed yet)" : "") +
        (st.unavailable ? ". Updates unavailable: " + st.unavailable : "");
      if (st.last) $("last").textContent = "Last update: " + st.last.from + " -> " + st.last.to + ", " + st.last.phase + (st.last.reason ? " (" + st.last.reason + ")" : "");
    }
  }
  $("update-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const file = $("bundle").files[0];
    if (!file || !confirm("Install " + file.name + " and reboot into it?")) return;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/update" + ($("force").checked ? "?force=1" : ""));
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    const p = $("progress");
    p.hidden = false;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { p.value = 100 * e.loaded / e.total; $("stage").textContent = "uploading " + Math.round(p.value) + " %"; } };
    xhr.upload.onload = () => { $("stage").textContent = "uploaded: verifying, writing the other slot, reading it back…"; p.removeAttribute("value"); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      const err = body && body.error;
      p.hidden = true;
      if (xhr.status === 200 && !err) {
        const r = body.result || body;
        $("stage").textContent = "";
        message(r.version + " written to slot " + r.slot + " and checked: the box reboots into its trial now.", "ok");
      } else {
        $("stage").textContent = "";
        message("refused: " + (err ? err.message : "HTTP " + xhr.status), "error");
      }
    };
    xhr.onerror = () => { p.hidden = true; message("upload failed (connection lost)", "error"); };
    xhr.send(file);
  });
  load();
})();
