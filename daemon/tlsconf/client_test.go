package tlsconf

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
)

// coreServer is a Core speaking TLS with pair's certificate and, when
// verify is not none, asking for the balancer's.
func coreServer(t *testing.T, set tlstest.Set, pair tlstest.Pair, verify VerifyMode) *server {
	t.Helper()
	st, err := NewStore(ServerOptions{Certificates: []CertFile{{pair.Cert, pair.Key}}, ClientCA: set.CA.File, Verify: verify})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, st.ServerConfig())
}

func TestClientVerifiesTheCore(t *testing.T) {
	set := tlstest.NewSet(t, "core1.example.net")
	cl, err := NewClient(ClientOptions{CA: set.CA.File})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		pair       tlstest.Pair
		serverName string
		want       string // error text; "" = success
	}{
		{"trusted and named", set.Server, "core1.example.net", ""},
		{"another CA", set.Foreign, "core1.example.net", "unknown authority"},
		{"wrong name", set.Server, "core2.example.net", "core2.example.net"},
		{"expired", set.Expired, "core1.example.net", "expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := coreServer(t, set, tt.pair, VerifyNone)
			cfg, err := cl.Config(s.addr, tt.serverName)
			if err != nil {
				t.Fatal(err)
			}
			c, err := dial(t, s, cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if err := echo(c, "OPTIONS"); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("dial error = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestClientNeedsANameForAnIP(t *testing.T) {
	cl, err := NewClient(ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"192.0.2.21:5061", "[2001:db8::21]:5061", "192.0.2.21"} {
		if _, err := cl.Config(addr, ""); !errors.Is(err, ErrNoServerName) {
			t.Errorf("Config(%q, \"\") err = %v, want ErrNoServerName", addr, err)
		}
	}
	cfg, err := cl.Config("core1.example.net:5061", "")
	if err != nil || cfg.ServerName != "core1.example.net" {
		t.Errorf("a DNS name verifies itself: %v, %v", cfg, err)
	}
	cfg, err = cl.Config("192.0.2.21:5061", "core1.example.net")
	if err != nil || cfg.ServerName != "core1.example.net" || cfg.RootCAs != nil || cfg.MinVersion != 0x0303 {
		t.Errorf("config = %+v, %v (want the name, system roots, TLS 1.2)", cfg, err)
	}
}

func TestClientMutualTLSAndResumption(t *testing.T) {
	set := tlstest.NewSet(t, "core1.example.net")
	cl, err := NewClient(ClientOptions{CA: set.CA.File, Certificate: &CertFile{set.Client.Cert, set.Client.Key}})
	if err != nil {
		t.Fatal(err)
	}
	s := coreServer(t, set, set.Server, VerifyRequire)
	connect := func() bool {
		t.Helper()
		cfg, err := cl.Config(s.addr, "core1.example.net")
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(t, s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := s.next(t)
		if r.err != nil {
			t.Fatalf("the Core refused the balancer: %v", r.err)
		}
		if got := PeerIdentity(r.state); !slices.Equal(got, []string{tlstest.ClientName}) {
			t.Errorf("the Core sees the balancer as %q", got)
		}
		// Reading lets the client take the TLS 1.3 session ticket.
		if err := echo(c, "OPTIONS"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		return c.ConnectionState().DidResume
	}
	if connect() {
		t.Fatal("the first connection resumed a session")
	}
	if !connect() {
		t.Error("the second connection did not resume the session")
	}
	if err := cl.Reload(); err != nil {
		t.Fatal(err)
	}
	if connect() {
		t.Error("a session from before the reload was resumed")
	}
}

func TestClientBadFiles(t *testing.T) {
	set := tlstest.NewSet(t, "core1.example.net")
	garbage := tlstest.WriteFile(t, "garbage.pem", []byte("junk"))
	for _, tt := range []struct {
		o    ClientOptions
		file string
	}{
		{ClientOptions{CA: garbage}, garbage},
		{ClientOptions{CA: set.CA.File, Certificate: &CertFile{set.Client.Cert, garbage}}, garbage},
		{ClientOptions{CA: set.CA.File, Certificate: &CertFile{set.Client.Cert, set.Server.Key}}, set.Server.Key},
	} {
		if _, err := NewClient(tt.o); err == nil || !strings.Contains(err.Error(), tt.file) {
			t.Errorf("NewClient(%+v) err = %v, want one naming %s", tt.o, err, tt.file)
		}
	}
	// A failed reload keeps the old material.
	live := tlstest.WriteFile(t, "ca.pem", nil)
	copyFile(t, set.CA.File, live)
	cl, err := NewClient(ClientOptions{CA: live})
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, garbage, live)
	if err := cl.Reload(); err == nil || !strings.Contains(err.Error(), live) {
		t.Fatalf("reload err = %v, want one naming %s", err, live)
	}
	s := coreServer(t, set, set.Server, VerifyNone)
	cfg, _ := cl.Config(s.addr, "core1.example.net")
	if _, err := dial(t, s, cfg); err != nil {
		t.Errorf("after a failed reload the old CA no longer works: %v", err)
	}
}
