// sipedge status page: polls /api/overview once a second and renders it.
// No framework, no CDN; every string goes in through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let csrf = "", loggedIn = false, mayAct = true, actions = [], lastRouted = {}, lastTime = 0, cps = {};

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function state(s) { return el("span", { class: "state " + String(s).toLowerCase() }, s); }
  function na(msg) { return el("p", { class: "na" }, msg); }
  function fmtDur(ns) {
    if (ns === null || ns === undefined || ns === "") return "–";
    if (typeof ns === "string") return ns;
    let s = ns / 1e9;
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  function fmtTime(t) { const d = new Date(t); return isNaN(d) ? String(t) : d.toLocaleTimeString(); }
  function message(text, kind) { const m = $("message"); m.textContent = text || ""; m.className = kind || ""; }
  function table(head, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows));
  }
  function can(m) { return loggedIn && actions.includes(m); }
  // defs fills the <dl> dl with [term, value] rows; each <dd> gets the id
  // prefix + term (spaces as dashes).
  function defs(dl, prefix, rows) {
    dl.replaceChildren();
    for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { id: prefix + k.replace(/ /g, "-") }, v === undefined ? "" : v));
  }
  function button(label, method, params, confirmText) {
    return el("button", { type: "button", "data-action": method, onclick: () => {
      if (confirmText && !window.confirm(confirmText)) return;
      act(method, params);
    } }, label);
  }
  function generic(v) {
    if (v === null || v === undefined) return na("none");
    if (Array.isArray(v)) {
      if (v.length && typeof v[0] === "object") {
        const keys = [...new Set(v.flatMap((o) => Object.keys(o || {})))];
        return table(keys, v.map((o) => el("tr", {}, ...keys.map((k) => el("td", {}, scalar(o[k], k))))));
      }
      return document.createTextNode(v.join(", "));
    }
    if (typeof v === "object") {
      const dl = el("dl");
      for (const [k, x] of Object.entries(v)) {
        dl.append(el("dt", {}, k), el("dd", {}, typeof x === "object" && x !== null ? generic(x) : scalar(x, k)));
      }
      return dl;
    }
    return document.createTextNode(String(v));
  }
  function scalar(x, k) {
    if (x === null || x === undefined) return "";
    if (typeof x === "object") return JSON.stringify(x);
    if (/state|status/.test(k || "") && typeof x === "string") return state(x);
    return String(x);
  }

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, opts || {}));
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body };
  }
  async function refreshSession() {
    const r = await api("/api/session");
    if (r.status === 200 && r.body) { csrf = r.body.csrf; mayAct = r.body.may_act !== false; setLoggedIn(r.body.logged_in); }
  }
  function setLoggedIn(v) {
    loggedIn = !!v;
    $("login-form").hidden = loggedIn || !mayAct;
    $("logout").hidden = !loggedIn;
    $("who").textContent = loggedIn ? "logged in" : mayAct ? "read-only" : "read-only (this address is not in web.admin_from)";
    document.body.classList.toggle("logged-in", loggedIn);
  }
  async function act(method, params) {
    const r = await api("/api/action/" + encodeURIComponent(method), {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(params || {}),
    });
    if (r.status === 401) { setLoggedIn(false); await refreshSession(); }
    const err = r.body && r.body.error;
    message(err ? method + ": " + err.message : method + ": done", err ? "error" : "ok");
    poll(true);
  }

  function renderNode(st) {
    $("node").textContent = st.node;
    $("version").textContent = st.version;
    document.title = st.node + " · sipedge";
    defs($("node-info"), "node-", [["node", st.node], ["version", st.version], ["uptime", st.uptime], ["profile", st.profile],
      ["platform", st.platform], ["config", st.config],
      ["store", st.store && (st.store.ok ? "ok" : "FAULT: " + st.store.error)]]);
    const subs = st.subsystems || [];
    $("subsystems").replaceChildren(subs.length ? table(["subsystem", "state", "last beat"],
      subs.map((s) => el("tr", {}, el("td", {}, s.name), el("td", {}, state(s.ok ? "alive" : "stale")),
        el("td", {}, fmtTime(s.last))))) : na("no subsystem reports liveness"));
    const sec = st.sections || {};
    $("network").replaceChildren(sec.network ? generic(sec.network) : na("not available on this box"));
    $("watchdog").replaceChildren(sec.watchdog ? generic(sec.watchdog) : na("not available on this box"));
    $("time-section").hidden = !sec.time; // the SNTP client, when time.ntp is set
    if (sec.time) $("time").replaceChildren(generic(sec.time));
  }

  function coreList(part, st) {
    let r = part && part.available ? part.result : null;
    if (!r && st && st.sections && st.sections.sip) r = st.sections.sip.cores;
    if (r && !Array.isArray(r)) r = r.cores || null;
    return r;
  }
  function renderCores(part, st, now) {
    const list = coreList(part, st);
    $("core-add").hidden = !can("cores.add");
    if (!list) { $("cores").replaceChildren(na(part && part.available ? part.error : "not available on this box")); return; }
    if (!list.length) { $("cores").replaceChildren(na("no Cores configured")); return; }
    const rows = list.map((c) => {
      let rate = c.cps;
      if (rate === undefined && c.routed !== undefined) {
        if (lastTime && lastRouted[c.name] !== undefined && now > lastTime)
          cps[c.name] = Math.max(0, (c.routed - lastRouted[c.name]) / ((now - lastTime) / 1000));
        lastRouted[c.name] = c.routed;
        rate = cps[c.name];
      }
      const active = c.calls !== undefined ? c.calls : c.active;
      const max = c.max_calls ? c.max_calls : "∞";
      const lat = c.latency_ms !== undefined ? Number(c.latency_ms).toFixed(1) + " ms" : "–";
      const acts = el("td", { class: "acts" });
      for (const [label, m, conf] of [["drain", "cores.drain"], ["enable", "cores.enable"],
        ["disable", "cores.disable"], ["remove", "cores.remove", "Remove Core " + c.name + "?"]]) {
        if (can(m)) acts.append(button(label, m, { name: c.name, core: c.name }, conf), " ");
      }
      return el("tr", { "data-core": c.name }, el("td", {}, c.name), el("td", {}, c.address || ""),
        el("td", { class: "core-state" }, state(c.state || "?")), el("td", {}, c.weight === undefined ? "" : c.weight),
        el("td", { class: "core-active" }, (active === undefined ? "–" : active) + " / " + max),
        el("td", { class: "core-cps" }, rate === undefined ? "–" : Number(rate).toFixed(1)),
        el("td", { class: "core-latency" }, lat), acts);
    });
    $("cores").replaceChildren(table(["Core", "address", "state", "weight", "active / max", "CPS", "probe", ""], rows));
  }

  function renderVIPs(part, st) {
    let r = part && part.available ? part.result : null;
    if (!r && st && st.sections && st.sections.vip) r = st.sections.vip;
    let groups = r && (Array.isArray(r) ? r : r.groups);
    if (!groups) { $("vips").replaceChildren(na(part && part.available ? part.error : "not available on this box")); return; }
    if (!groups.length) { $("vips").replaceChildren(na("no VIP groups")); return; }
    const rows = groups.map((g) => {
      const peers = g.peers || [];
      let heard = "–";
      if (peers.length) heard = peers.map((p) => (p.node || "peer") + " " + fmtDur(p.last_heard_ago) + " ago").join(", ");
      const acts = el("td", { class: "acts" });
      const p = { group: g.name, name: g.name };
      if (can("vip.release")) acts.append(button("release", "vip.release", p, "Release VIP " + g.name + " to the peer?"), " ");
      if (can("vip.takeover")) acts.append(button("take over", "vip.takeover", p, "Take over VIP " + g.name + "?"), " ");
      // An operator's release or takeover holds until vip.auto ends it.
      const pin = g.held ? "released by operator" : g.pinned ? "taken over by operator" : "";
      if (pin && can("vip.auto")) acts.append(button("automatic", "vip.auto", p, "End the operator's " + (g.held ? "release" : "takeover") + " of VIP " + g.name + " (back to priority and failback)?"));
      return el("tr", { "data-vip": g.name }, el("td", {}, g.name), el("td", {}, g.address || ""), el("td", {}, g.role || ""),
        el("td", { class: "vip-state" }, state(g.state || "?"), pin ? el("small", { class: "vip-pin" }, " " + pin) : null),
        el("td", {}, g.holder || "–"), el("td", {}, heard),
        el("td", {}, g.takeover_in === undefined || g.takeover_in === null ? "–" : fmtDur(g.takeover_in)), acts);
    });
    $("vips").replaceChildren(table(["group", "address", "role", "state", "holder", "peer last heard", "takeover in", ""], rows));
  }

  // renderReplica shows the hot-standby channel; the section stays hidden
  // on a box without replication.
  function renderReplica(part, st) {
    let r = part && part.available ? part.result : null;
    if (!r && st && st.sections) r = st.sections.replica || null;
    $("replica-section").hidden = !r;
    if (!r) return;
    const active = r.role === "active";
    const conn = el("span", {}, state(r.connected ? "connected" : "disconnected"), r.connected && r.since ? " since " + fmtTime(r.since) : "");
    const rows = [
      ["role", el("span", {}, state(r.role || "?"), active ? " streams to the peer (holds the SIP VIP)" : " mirrors the peer")],
      ["connected", conn],
      ["peer", (r.peer_node ? r.peer_node + " at " : "") + (r.peer || "–")],
      ["lag", Number(r.lag_ms || 0).toFixed(1) + " ms" + (active ? " (send to ack)" : " (frame age at arrival)")],
      [active ? "dialogs streamed" : "dialogs mirrored", r.dialogs === undefined ? "–" : r.dialogs],
      ["events pending", (r.events_pending || 0) + (active && r.frames_unacked ? ", " + r.frames_unacked + " frames unacknowledged" : "")],
    ];
    if (r.last_frame_ago) rows.push(["last frame", r.last_frame_ago + " ago"]);
    defs($("replica"), "replica-", rows);
  }

  function renderBans(part) {
    const r = part && part.available ? part.result : null;
    if (!r) { $("bans").replaceChildren(na(part && part.available ? part.error : "not available on this box")); return; }
    const bans = r.bans || [], c = r.counts || {};
    const sum = el("p", {}, "dropped: banned " + (c.dropped_banned || 0) + ", scanner " + (c.dropped_scanner || 0) +
      "; refused untrusted " + (c.refused_untrusted || 0) + (r.save_error ? "; NOT SAVED: " + r.save_error : ""));
    if (!bans.length) { $("bans").replaceChildren(sum, na("no bans")); return; }
    const rows = bans.slice(0, 200).map((b) => {
      const acts = el("td", { class: "acts" });
      if (can("bans.clear")) acts.append(button("clear", "bans.clear", { source: b.source }, "Lift the ban on " + b.source + "?"));
      return el("tr", { "data-ban": b.source }, el("td", {}, b.source), el("td", {}, b.reason), el("td", {}, fmtTime(b.since)),
        el("td", {}, fmtTime(b.until)), el("td", {}, b.dropped), acts);
    });
    const all = can("bans.clear") ? button("clear all " + bans.length, "bans.clear", {}, "Lift every ban?") : "";
    $("bans").replaceChildren(sum, table(["source", "reason", "since", "until", "dropped", ""], rows), all);
  }

  function renderEvents(part) {
    const ev = part && part.available && Array.isArray(part.result) ? part.result.slice().reverse() : null;
    if (!ev) { $("events").replaceChildren(na(part ? part.error || "none" : "none")); return; }
    $("events").replaceChildren(ev.length ? table(["time", "event", "subject", "message"],
      ev.map((e) => el("tr", { "data-seq": e.seq }, el("td", {}, fmtTime(e.time)), el("td", { class: "ev-kind" }, e.kind),
        el("td", {}, e.subject), el("td", {}, e.message)))) : na("no events"));
  }

  // renderAlarms shows the unsafe settings the box runs with, and the
  // alarms that stand (ctl status: a weak cluster key, a VIP that cannot
  // move, ...).
  function renderAlarms(ws, st) {
    const a = $("alarms");
    const als = (st && st.alarms) || [];
    a.hidden = !(ws && ws.length) && !als.length;
    a.replaceChildren(
      ...als.map((x) => el("p", { class: "alarm", "data-alarm": x.id }, "⚠ " + x.message + " (since " + fmtTime(x.since) + ")")),
      ...(ws || []).map((w) => el("p", { class: "alarm", "data-setting": w.setting }, "⚠ " + w.setting + ": " + w.message)));
  }

  // renderPair shows both boxes of the pair side by side (ctl pair); the
  // section stays hidden on a box without a peer.
  function renderPair(part) {
    const v = part && part.available ? part.result : null;
    const boxes = v && v.boxes ? v.boxes : [];
    $("pair-section").hidden = boxes.length < 2;
    if (boxes.length < 2) return;
    const cell = (b, f) => { try { return f(b); } catch (e) { return "–"; } };
    const sum = (b) => b.summary || null;
    const groups = [...new Set(boxes.flatMap((b) => (b.groups || []).map((g) => g.name)))];
    const rows = [
      ["box", (b) => (b.node || b.address || "?") + (b.self ? " (this box)" : " (peer)")],
      ["state", (b) => {
        if (b.self || b.reachable) return state("up");
        const since = b.unreachable_since ? " since " + new Date(b.unreachable_since).toLocaleString() : "";
        return el("span", { class: "unreachable" }, (b.stopped ? "stopped" : "peer unreachable") + since);
      }],
      ["role", (b) => b.role || "–"],
      ["version", (b) => sum(b) ? sum(b).v : b.summary_error ? "unreadable summary" : b.last_heard ? "earlier release" : "–"],
      ["profile", (b) => sum(b) ? [sum(b).p, sum(b).k].filter(Boolean).join(" ") : "–"],
      ...groups.map((n) => ["VIP " + n, (b) => {
        const g = (b.groups || []).find((x) => x.name === n);
        return g ? el("span", {}, state(g.state), " holder " + (g.holder || "none")) : "–";
      }]),
      ["Cores", (b) => sum(b) && sum(b).k !== "db" ? (sum(b).cu || 0) + " of " + (sum(b).ct || 0) + " up" : "–"],
      ["calls", (b) => sum(b) && sum(b).k !== "db" ? String(sum(b).c || 0) : "–"],
      ["replication", (b) => sum(b) && sum(b).r ? sum(b).r + (sum(b).rc ? ", lag " + Number(sum(b).rl || 0).toFixed(1) + " ms" : ", NOT connected") : "–"],
      ["last heartbeat", (b) => b.self ? "–" : b.last_heard ? fmtDur((b.last_heard_ago_ms || 0) * 1e6) + " ago" : "never heard"],
    ];
    $("pair").replaceChildren(table(["", ...boxes.map((b) => b.node || b.address || "peer")],
      rows.map(([k, f]) => el("tr", { "data-row": k }, el("td", {}, k),
        ...boxes.map((b) => el("td", { "data-box": b.self ? "self" : "peer" }, cell(b, f)))))));
  }

  // Charts: the last hour from /api/history, drawn as SVG by this script
  // (no library, no network). Each line carries its values in data-
  // attributes (data-values: the per-second part, data-max).
  const SVG = "http://www.w3.org/2000/svg";
  let span = 3600, lastHistory = null;
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function points(h, name) {
    const out = [];
    for (const b of [h.coarse, h.fine]) {
      const vals = (b.series || {})[name] || [];
      vals.forEach((v, i) => out.push([b.start + i * b.step, v]));
    }
    return out;
  }
  function chart(h, title, names, unit) {
    const W = 600, H = 130, L = 40, R = 6, T = 8, B = 18;
    const from = h.now - span, to = h.now;
    const series = names.map((n) => [n, points(h, n).filter((p) => p[0] >= from)]);
    let top = 0;
    for (const [, pts] of series) for (const [, v] of pts) if (v !== null && v > top) top = v;
    top = top > 0 ? top * 1.1 : 1;
    const x = (t) => L + (W - L - R) * (t - from) / Math.max(1, to - from);
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const g = svg("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title, "data-chart": title });
    for (const f of [0, 0.5, 1]) {
      g.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(top * f / 1.1), y2: y(top * f / 1.1) }),
        svg("text", { class: "axis", x: 2, y: y(top * f / 1.1) + 3 }, fmtNum(top * f / 1.1)));
    }
    for (const m of span > 600 ? [60, 40, 20, 10, 0] : [10, 5, 0]) {
      g.append(svg("text", { class: "axis", x: Math.min(x(to - m * 60), W - 24), y: H - 4 }, m ? "-" + m + " min" : "now"));
    }
    for (const e of h.events || []) {
      const t = Date.parse(e.time) / 1000;
      if (t < from || t > to) continue;
      g.append(svg("line", { class: "vip-event " + e.state, x1: x(t), x2: x(t), y1: T, y2: H - B,
        "data-group": e.group, "data-state": e.state, "data-time": Math.round(t) },
      svg("title", {}, new Date(t * 1000).toLocaleTimeString() + " VIP " + e.group + ": " + e.text)));
    }
    const legend = [];
    series.forEach(([name, pts], i) => {
      let d = "", pen = false, max = 0;
      for (const [t, v] of pts) {
        if (v === null) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
        if (v > max) max = v;
      }
      const fine = ((h.fine.series || {})[name] || []).map((v) => v === null ? "" : String(v)).join(",");
      g.append(svg("path", { class: "line c" + (i % 6), d: d || "M0 0", "data-series": name, "data-max": String(max),
        "data-fine-start": String(h.fine.start), "data-values": fine }));
      legend.push(el("span", { class: "legend c" + (i % 6) }, "— " + name.replace(/^latency:/, "")));
    });
    return el("figure", { class: "chart" }, el("figcaption", {}, title + (unit ? " (" + unit + ")" : ""), ...legend), g);
  }
  function fmtNum(v) { return v >= 100 ? Math.round(v).toString() : v >= 10 ? v.toFixed(0) : v.toFixed(1); }
  function renderCharts(h) {
    const names = h.names || [];
    if (!names.length && !(h.events || []).length) { $("charts").replaceChildren(na("no traffic recorded yet (a DB box has only VIP events)")); return; }
    const lat = names.filter((n) => n.startsWith("latency:"));
    $("charts").replaceChildren(
      chart(h, "Calls per second", ["cps"], "calls/s"),
      chart(h, "Active calls", ["active"], ""),
      chart(h, "Failed calls and 503s", ["failed", "503"], "per second"),
      chart(h, "Core probe latency", lat, "ms"));
    for (const b of document.querySelectorAll("button.span")) b.classList.toggle("on", Number(b.dataset.span) === span);
  }
  let htimer = null;
  async function pollHistory() {
    if (htimer) { clearTimeout(htimer); htimer = null; }
    try {
      const r = await api("/api/history");
      if (r.status === 200 && r.body) { lastHistory = r.body; renderCharts(r.body); }
      else $("charts").replaceChildren(na(r.body && r.body.error ? r.body.error.message : "history: error " + r.status));
    } catch (e) {
      // the overview poll reports the box not answering
    } finally {
      htimer = setTimeout(pollHistory, 2000);
    }
  }

  let timer = null, busy = false;
  async function poll(now) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (busy && !now) return;
    busy = true;
    try {
      const r = await api("/api/overview");
      if (r.status !== 200 || !r.body) {
        $("updated").textContent = "error " + r.status + (r.body && r.body.error ? ": " + r.body.error.message : "");
      } else {
        const o = r.body, t = Date.now();
        actions = o.actions || [];
        if (o.session && o.session.logged_in !== loggedIn) { await refreshSession(); }
        const st = o.status && o.status.available ? o.status.result : null;
        if (st) renderNode(st);
        renderPair(o.pair);
        renderVIPs(o.vips, st);
        renderReplica(o.replica, st);
        renderCores(o.cores, st, t);
        lastTime = t;
        renderBans(o.bans);
        renderEvents(o.events);
        renderAlarms(o.warnings, st);
        $("box-section").hidden = !can("reboot");
        $("updated").textContent = "updated " + new Date(o.time).toLocaleTimeString();
      }
    } catch (e) {
      $("updated").textContent = "no answer from the box (" + e.message + ")";
    } finally {
      busy = false;
      timer = setTimeout(poll, 1000);
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await api("/api/login", { method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ password: $("password").value }) });
      $("password").value = "";
      if (r.status === 200) { csrf = r.body.csrf; setLoggedIn(true); message("logged in", "ok"); poll(true); }
      else { message(r.body && r.body.error ? r.body.error.message : "login failed (" + r.status + ")", "error"); await refreshSession(); }
    });
    $("logout").addEventListener("click", async () => {
      await api("/api/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } });
      setLoggedIn(false); await refreshSession(); message("logged out", "ok"); poll(true);
    });
    $("core-add").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const p = { name: $("core-name").value.trim(), address: $("core-address").value.trim() };
      const w = parseInt($("core-weight").value, 10), m = parseInt($("core-max").value, 10);
      if (!isNaN(w)) p.weight = w;
      if (!isNaN(m)) p.max_calls = m;
      act("cores.add", p);
    });
    $("reboot").addEventListener("click", () => { if (window.confirm("Reboot the box?")) act("reboot", {}); });
    for (const b of document.querySelectorAll("button.span")) {
      b.addEventListener("click", () => { span = Number(b.dataset.span); if (lastHistory) renderCharts(lastHistory); });
    }
    await refreshSession();
    poll(true);
    pollHistory();
  });
})();
