package bundle

import (
	"bytes"
	"io"
	"testing"
)

// FuzzReadHeader: any bytes are refused or verified without a panic,
// and nothing beyond the bounded header is read before the signature.
func FuzzReadHeader(f *testing.F) {
	testKeys := []Key{{Name: "test", Pub: TestPublicKey(), Test: true}}
	var good bytes.Buffer
	Write(&good, Manifest{Board: "b", Version: "v1.0.0+1", MinVersion: "v0.0.0+0"}, []Input{{"slot.img", []byte("x")}}, TestPrivateKey())
	f.Add(good.Bytes())
	f.Add([]byte(Magic + "\x00\x00\x00\x02{}"))
	f.Add([]byte(Magic + "\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &countingReader{r: bytes.NewReader(b)}
		h, err := ReadHeader(r, testKeys)
		if r.n > int64(len(Magic)+4+MaxManifest+64) {
			t.Fatalf("read %d bytes before trusting anything", r.n)
		}
		if err != nil {
			return
		}
		h.Check("b", Version{}, false)
		for i := range h.Parts {
			io.Copy(io.Discard, h.Part(r, i))
		}
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
