package tlsconf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sipedge/sipedge/daemon/tlsconf/tlstest"
)

func TestExpiryCollector(t *testing.T) {
	set := tlstest.NewSet(t, "edge.example.com")
	live := CertFile{Cert: tlstest.WriteFile(t, "cert.pem", nil), Key: tlstest.WriteFile(t, "key.pem", nil)}
	copyFile(t, set.Server.Cert, live.Cert)
	copyFile(t, set.Server.Key, live.Key)
	st, err := NewStore(ServerOptions{Certificates: []CertFile{live}, ClientCA: set.CA.File, Verify: VerifyRequire})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(ClientOptions{CA: set.CA.File, Certificate: &CertFile{set.Client.Cert, set.Client.Key}})
	if err != nil {
		t.Fatal(err)
	}
	coll := NewCollector(st, cl)
	want := func(server int64) string {
		return fmt.Sprintf(`# HELP sipedge_tls_certificate_expiry_seconds %s
# TYPE sipedge_tls_certificate_expiry_seconds gauge
sipedge_tls_certificate_expiry_seconds{file=%q,role="ca"} %d
sipedge_tls_certificate_expiry_seconds{file=%q,role="client"} %d
sipedge_tls_certificate_expiry_seconds{file=%q,role="server"} %d
`, expiryHelp, set.CA.File, set.CA.Cert.NotAfter.Unix(), set.Client.Cert, set.Client.Leaf.NotAfter.Unix(), live.Cert, server)
	}
	if err := testutil.CollectAndCompare(coll, strings.NewReader(want(set.Server.Leaf.NotAfter.Unix()))); err != nil {
		t.Error(err)
	}
	// The same CA for both sides is one series; a reload shows at once.
	copyFile(t, set.Expired.Cert, live.Cert)
	copyFile(t, set.Expired.Key, live.Key)
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(coll, strings.NewReader(want(set.Expired.Leaf.NotAfter.Unix()))); err != nil {
		t.Error(err)
	}
	if !strings.Contains(expiryHelp, "Unix time in seconds") {
		t.Errorf("the help text does not give the unit: %s", expiryHelp)
	}
}
