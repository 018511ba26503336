package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, defaults and validates the file at path. A bad file returns
// Problems listing everything wrong with it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Default returns the embedded default configuration.
func Default() *Config {
	c, err := Parse(DefaultName, DefaultYAML)
	if err != nil {
		panic("config: embedded default is invalid: " + err.Error())
	}
	return c
}

// Parse decodes, defaults and validates data; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err.Error() != "EOF" {
		return nil, Problems{{File: name, Line: yamlErrLine(err), Msg: "not valid YAML: " + cleanYAMLErr(err)}}
	}
	d := &decoder{lines: map[string]int{}}
	c := &Config{Source: name}
	if root.Kind != 0 {
		d.decode(&root, reflect.ValueOf(c).Elem(), "")
	}
	// Validate even after decode problems, so the operator sees every
	// problem at once; a field that failed to decode is reported once.
	zeros := c.zeroWarnings(d.lines) // before the defaults fill them
	c.applyDefaults(d.lines)
	reported := map[string]bool{}
	for _, p := range d.problems {
		reported[p.Path] = true
	}
	for _, p := range c.validate(d.lines) {
		if !reported[p.Path] {
			d.problems = append(d.problems, p)
		}
	}
	if len(d.problems) > 0 {
		for i := range d.problems {
			d.problems[i].File = name
			if d.problems[i].Line == 0 {
				d.problems[i].Line = lineOf(d.lines, d.problems[i].Path)
			}
		}
		d.problems.sort()
		return nil, d.problems
	}
	for _, p := range zeros {
		p.File = name
		c.Warnings = append(c.Warnings, p)
	}
	c.Web.warnings(func(path, format string, args ...any) {
		c.Warnings = append(c.Warnings, Problem{File: name, Line: lineOf(d.lines, path), Path: path, Msg: fmt.Sprintf(format, args...)})
	})
	return c, nil
}

// lineOf finds the line of path, or of its nearest parent in the file.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

func yamlErrLine(err error) int {
	var line int
	if _, e := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); e == nil {
		return line
	}
	return 0
}

func cleanYAMLErr(err error) string {
	s := err.Error()
	if l := yamlErrLine(err); l > 0 {
		return strings.TrimPrefix(s, fmt.Sprintf("yaml: line %d: ", l))
	}
	return strings.TrimPrefix(s, "yaml: ")
}

// Marshal returns c as YAML (the effective configuration).
// Settings that are unsafe on a public address (Unsafe) head it as
// comments.
func Marshal(c *Config) ([]byte, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var head []byte
	for _, w := range c.Unsafe() {
		head = append(head, "# WARNING: "+w+"\n"...)
	}
	return append(head, b...), nil
}

// Unsafe lists the lab settings that are valid but unsafe on a public
// address, for the log at start and `ctl config show`.
func (c *Config) Unsafe() []string {
	var w []string
	if c.Security.Relay == "open" {
		w = append(w, "security.relay: open makes the balancer an open relay: any source may route requests to any address it can reach (toll fraud, SSRF); use it in a lab only, \"dialogs\" is the safe setting")
	}
	return w
}

// SocketPath is the control socket's path.
func (c *Config) SocketPath() string {
	if c.Control.Socket != "" {
		return c.Control.Socket
	}
	return filepath.Join(c.Node.DataDir, "sipedge.sock")
}

// SocketPathOf finds the control socket named by the file at path even
// when the rest of the file is invalid, so that `sipedge ctl` still
// reaches a daemon whose file is being edited.
func SocketPathOf(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	var c struct {
		Node struct {
			DataDir string `yaml:"data_dir"`
		} `yaml:"node"`
		Control struct {
			Socket string `yaml:"socket"`
		} `yaml:"control"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("config %s: not valid YAML: %w", path, err)
	}
	cfg := Config{Node: Node{DataDir: c.Node.DataDir}, Control: Control{Socket: c.Control.Socket}}
	if cfg.Node.DataDir == "" {
		cfg.Node.DataDir = "/data"
	}
	return cfg.SocketPath(), nil
}
