// Package grubenv reads and writes GRUB's environment block (the 1024-byte
// file `grubenv` that GRUB's load_env and save_env use): a header line,
// NAME=value lines and '#' padding to exactly 1024 bytes. The appliance's
// boot partition keeps one; the GRUB configuration written by
// platform/image uses it for the committed slot and the one-shot trial
// boot, and daemon/update changes it in place (same size, same blocks:
// GRUB's save_env can only overwrite an existing file's blocks).
package grubenv

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Size is the size of an environment block.
const Size = 1024

const header = "# GRUB Environment Block\n"

// Env is an environment block's variables.
type Env map[string]string

// Parse reads a block. Escaped values (GRUB writes a backslash before a
// backslash or newline) are refused: the appliance never stores any.
func Parse(b []byte) (Env, error) {
	if len(b) != Size {
		return nil, fmt.Errorf("grubenv: %d bytes, want %d", len(b), Size)
	}
	if !bytes.HasPrefix(b, []byte(header)) {
		return nil, errors.New("grubenv: no GRUB environment block header")
	}
	env := Env{}
	for _, line := range strings.Split(string(b[len(header):]), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("grubenv: bad line %q", line)
		}
		if strings.Contains(v, `\`) {
			return nil, fmt.Errorf("grubenv: escaped value in %q", line)
		}
		env[k] = v
	}
	return env, nil
}

// Encode writes env as a block, names sorted so the bytes are
// reproducible. A name or value with a newline, '=' in a name, a
// backslash, or a block that does not fit is refused.
func (env Env) Encode() ([]byte, error) {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(header)
	for _, k := range names {
		v := env[k]
		if k == "" || strings.ContainsAny(k, "=\n\\#") || strings.ContainsAny(v, "\n\\") {
			return nil, fmt.Errorf("grubenv: bad variable %q=%q", k, v)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	if b.Len() > Size {
		return nil, fmt.Errorf("grubenv: %d bytes of variables do not fit in %d", b.Len(), Size)
	}
	b.Write(bytes.Repeat([]byte("#"), Size-b.Len()))
	return b.Bytes(), nil
}
