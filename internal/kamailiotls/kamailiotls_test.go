package kamailiotls

import (
	"strings"
	"testing"
)

func TestConfigNamesTheFiles(t *testing.T) {
	c := Config("/x/cert.pem", "/x/key.pem")
	for _, want := range []string{"certificate = /x/cert.pem\n", "private_key = /x/key.pem\n", "[server:default]", "[client:default]", "method = TLSv1.2+"} {
		if !strings.Contains(c, want) {
			t.Errorf("tls.cfg lacks %q:\n%s", want, c)
		}
	}
}

func TestCrashed(t *testing.T) {
	for log, want := range map[string]string{
		"": "",
		" 0(12) INFO: <core> [main.c:1]: all fine\n":                                "",
		"ALERT: <core> [core/pass_fd.c:1]: child process 7 exited by a signal 11\n": "exited by a signal",
		"tlsf_free(): freeing already freed pointer\n":                              "freeing already freed pointer",
	} {
		if got := Crashed(log); got != want {
			t.Errorf("Crashed(%q) = %q, want %q", log, got, want)
		}
	}
}
