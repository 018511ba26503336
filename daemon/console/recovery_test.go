package console

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestOfferRecovery(t *testing.T) {
	for _, tt := range []struct {
		name, keys string
		want       bool
	}{
		{"key pressed", "x\rR", true},
		{"other keys", "yes\r\n", false},
		{"nothing", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			w.WriteString(tt.keys)
			var out bytes.Buffer
			got, err := offerRecovery(context.Background(), r, &out, 300*time.Millisecond, r.SetReadDeadline)
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(out.String(), "Press r within") {
				t.Errorf("offer: %q", out.String())
			}
		})
	}
}
