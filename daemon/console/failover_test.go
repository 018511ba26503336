package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// fakeClient answers help (the methods it has) and vip, records every
// other call as "method params" and answers it {}.
type fakeClient struct {
	methods []string
	calls   []string
}

func (f *fakeClient) Call(_ context.Context, method string, params, result any) error {
	var answer any = map[string]any{}
	switch method {
	case "help":
		m := map[string]string{}
		for _, n := range f.methods {
			m[n] = ""
		}
		answer = m
	case "config.show":
		return errors.New("not in this test")
	case "vip", MethodSession: // {}: no login
	default:
		p, _ := json.Marshal(params)
		f.calls = append(f.calls, method+" "+string(p))
	}
	if result == nil {
		return nil
	}
	b, _ := json.Marshal(answer)
	return json.Unmarshal(b, result)
}

// TestFailoverMenu: the failover entries call vip.release, vip.takeover
// and vip.auto with the group typed, only after a yes.
func TestFailoverMenu(t *testing.T) {
	for _, tc := range []struct {
		option, method, question string
	}{
		{"2", "vip.release", "Release VIP group sip?"},
		{"3", "vip.takeover", "Take over VIP group sip?"},
		{"4", "vip.auto", "End the operator's release or take-over of VIP group sip"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			f := &fakeClient{methods: []string{"vip", "vip.release", "vip.takeover", "vip.auto"}}
			var out bytes.Buffer
			// Declined once, then confirmed; 0 leaves the submenu and the console.
			in := "3\n" + tc.option + "\nsip\nn\n" + tc.option + "\nsip\ny\n0\n0\n"
			err := Run(context.Background(), Options{In: strings.NewReader(in), Out: &out, Client: f, AllowExit: true, Shell: "-",
				Hostname: func() (string, error) { return "box", nil }})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.method + ` {"group":"sip","name":"sip"}`
			if len(f.calls) != 1 || f.calls[0] != want {
				t.Errorf("calls %q, want [%s]", f.calls, want)
			}
			for _, w := range []string{tc.question, "Nothing done.", "VIP sip: " + strings.TrimPrefix(tc.method, "vip.") + " done."} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
