package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"time"
)

// MaxBundle bounds a bundle fetched or uploaded: a slot image of 64 MiB
// and its header.
const MaxBundle = 65<<20 + 128<<10

// Fetch downloads a bundle from rawURL (http or https) into a new file
// in dir, which the caller removes. The server must be on one of the
// allowed networks (the management network): the address actually
// dialled is checked, so a name that resolves elsewhere, or a redirect
// there, is refused. At most MaxBundle bytes, within timeout. The bundle
// is signed: TLS adds nothing to its integrity, so a self-signed server
// certificate is not checked (http works as well).
func Fetch(ctx context.Context, rawURL string, allowed []netip.Prefix, dir string, timeout time.Duration) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("update: %q is not an http(s) URL", rawURL)
	}
	if len(allowed) == 0 {
		return "", errors.New("update: no management network configured to fetch from")
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		for _, p := range allowed {
			if p.Contains(ap.Addr().Unmap()) {
				return nil
			}
		}
		return fmt.Errorf("update: %s is not on the management network %v", ap.Addr(), allowed)
	}}
	tr := &http.Transport{DialContext: dialer.DialContext, Proxy: nil, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second, MaxResponseHeaderBytes: 64 << 10}
	tr.TLSClientConfig = insecureTLS()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("update: fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("update: fetch %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > MaxBundle {
		return "", fmt.Errorf("update: fetch: %d bytes, a bundle is at most %d", resp.ContentLength, MaxBundle)
	}
	f, err := os.CreateTemp(dir, "fetch-*.bundle")
	if err != nil {
		return "", fmt.Errorf("update: fetch: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, MaxBundle+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > MaxBundle {
		err = fmt.Errorf("more than %d bytes", MaxBundle)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("update: fetch: %w", err)
	}
	return f.Name(), nil
}
