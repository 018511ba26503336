package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sipedge/sipedge/daemon/ctl"
)

// fakeDaemon answers a few control methods on a unix socket and records
// each call as "method params".
type fakeDaemon struct {
	sock  string
	mu    sync.Mutex
	calls []string
}

func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{sock: filepath.Join(t.TempDir(), "ctl.sock")}
	s := ctl.NewServer(slog.New(slog.DiscardHandler))
	answer := func(method, result string) {
		s.Handle(method, "", func(_ context.Context, p json.RawMessage) (any, error) {
			f.mu.Lock()
			f.calls = append(f.calls, strings.TrimSpace(method+" "+string(p)))
			f.mu.Unlock()
			return json.RawMessage(result), nil
		})
	}
	answer("status", `{"node":"edge-t","profile":"single","version":"v1"}`)
	answer("cores", `{"algorithm":"least-load","listen":["udp:127.0.0.1:5060"],"cores":[{"name":"core1","address":"192.0.2.21:5060","state":"active"}]}`)
	answer("cores.drain", `{"algorithm":"least-load","cores":[{"name":"core1","state":"draining"}]}`)
	answer("vip", `{"node":"edge-t","groups":[{"name":"sip","address":"192.0.2.10/24","state":"master"}]}`)
	answer("vip.auto", `{"node":"edge-t","groups":[{"name":"sip","state":"backup"}]}`)
	l, err := ctl.Listen(f.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// last returns the calls recorded since the previous last.
func (f *fakeDaemon) last() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// TestCtlWordsAndJSON: `cores list` and `vip show` are `cores` and
// `vip`; -json/--json work before and after the command words; the
// arguments reach the method without the flag.
func TestCtlWordsAndJSON(t *testing.T) {
	f := startFakeDaemon(t)
	tests := []struct {
		args []string
		code int
		call string // the method and params the daemon saw ("": none)
		out  string // in stdout
		json bool   // stdout is the daemon's JSON, indented
	}{
		{[]string{"status"}, 0, "status", "edge-t", false},
		{[]string{"-json", "status"}, 0, "status", `"node": "edge-t"`, true},
		{[]string{"status", "--json"}, 0, "status", `"node": "edge-t"`, true},
		{[]string{"status", "-json"}, 0, "status", `"node": "edge-t"`, true},
		{[]string{"cores"}, 0, "cores", "algorithm least-load", false},
		{[]string{"cores", "list"}, 0, "cores", "algorithm least-load", false},
		{[]string{"cores", "list", "--json"}, 0, "cores", `"algorithm": "least-load"`, true},
		{[]string{"cores", "--json", "list"}, 0, "cores", `"algorithm": "least-load"`, true},
		{[]string{"cores", "list", "extra"}, 2, "", "", false},
		{[]string{"cores", "drain", "core1", "--json"}, 0, `cores.drain {"name":"core1"}`, `"state": "draining"`, true},
		{[]string{"vip"}, 0, "vip", "GROUP", false},
		{[]string{"vip", "show"}, 0, "vip", "GROUP", false},
		{[]string{"--json", "vip", "show"}, 0, "vip", `"name": "sip"`, true},
		{[]string{"vip", "show", "-json"}, 0, "vip", `"name": "sip"`, true},
		{[]string{"vip", "auto", "sip"}, 0, `vip.auto {"group":"sip"}`, "BACKUP", false},
		{[]string{"vip", "auto", "--json", "sip"}, 0, `vip.auto {"group":"sip"}`, `"state": "backup"`, true},
		{[]string{"vip", "list"}, 2, "", "", false},
		{[]string{"cores", "show"}, 2, "", "", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := Env{Args: append([]string{"-socket", f.sock}, tt.args...), Stdin: strings.NewReader(""),
				Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
			code := runCtl(context.Background(), env)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errOut.String())
			}
			calls := f.last()
			if tt.call == "" {
				if len(calls) != 0 {
					t.Errorf("daemon called: %v, want no call", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0] != tt.call {
				t.Errorf("daemon called %q, want [%s]", calls, tt.call)
			}
			if !strings.Contains(out.String(), tt.out) {
				t.Errorf("stdout lacks %q:\n%s", tt.out, out.String())
			}
			if isJSON := json.Valid(out.Bytes()) && strings.HasPrefix(out.String(), "{\n"); isJSON != tt.json {
				t.Errorf("stdout is JSON: %v, want %v:\n%s", isJSON, tt.json, out.String())
			}
		})
	}
}

// TestCtlHelpAndREADME: `ctl help` shows the synonyms and --json after
// the command; every command of the README's ctl table resolves, and
// every command is in that table.
func TestCtlHelpAndREADME(t *testing.T) {
	var out bytes.Buffer
	if code := runCtl(context.Background(), Env{Args: []string{"help"}, Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}); code != 0 {
		t.Fatalf("ctl help: exit %d", code)
	}
	for _, want := range []string{"cores [list] ", "vip [show] ", "vip auto GROUP", "[--json]", "sipedge ctl status --json"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ctl help lacks %q:\n%s", want, out.String())
		}
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(readme), "\n### sipedge ctl\n")
	sec, _, _ = strings.Cut(sec, "\n### ")
	inTable := map[string]bool{}
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			for _, words := range commandWords(m[1]) {
				inTable[words] = true
				if c, rest, ok := findCtl(strings.Fields(words)); !ok || len(rest) > 0 {
					t.Errorf("README ctl table: %q is no command (matched %q, left %q)", words, c.words, rest)
				}
			}
		}
	}
	if len(inTable) < 10 {
		t.Fatalf("README ctl table not found or too short: %v", inTable)
	}
	for _, c := range ctlCommands() {
		forms := []string{c.words}
		if c.also != "" {
			forms = append(forms, c.words+" "+c.also)
		}
		for _, f := range forms {
			if !inTable[f] {
				t.Errorf("README ctl table lacks `%s`", f)
			}
		}
	}
}

// commandWords expands a README cell such as "cores remove\|drain NAME"
// into its commands' words: "cores remove", "cores drain".
func commandWords(cell string) []string {
	var words []string
	for _, w := range strings.Fields(cell) {
		if strings.ToLower(w) != w || strings.ContainsAny(w, "[:") {
			break // arguments: NAME, [N], [udp:|tcp:]IP:PORT
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return nil
	}
	head, alts := strings.Join(words[:len(words)-1], " "), strings.Split(words[len(words)-1], `\|`)
	out := make([]string, 0, len(alts))
	for _, a := range alts {
		out = append(out, strings.TrimSpace(head+" "+a))
	}
	return out
}
