package platform

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ModInfo reads the key=value fields of a kernel module's .modinfo
// section (what modinfo(8) prints), e.g. "depends", "alias", "vermagic".
// Repeated keys are joined with ",".
func ModInfo(koPath string) (map[string]string, error) {
	f, err := elf.Open(koPath)
	if err != nil {
		return nil, fmt.Errorf("modinfo %s: %w", koPath, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("modinfo %s: no .modinfo section", koPath)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("modinfo %s: %w", koPath, err)
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		if old, dup := info[k]; dup && old != "" {
			v = old + "," + v
		}
		info[k] = v
	}
	return info, nil
}

// ModDepends returns the modules koPath depends on.
func ModDepends(koPath string) ([]string, error) {
	info, err := ModInfo(koPath)
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, d := range strings.Split(info["depends"], ",") {
		if d != "" {
			deps = append(deps, d)
		}
	}
	return deps, nil
}

// FindModules walks a kernel module tree (e.g. lib/modules/6.1.0-N-amd64)
// and maps each module name, in the kernel's spelling, to its .ko path.
func FindModules(root string) (map[string]string, error) {
	mods := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			mods[NormModule(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find modules in %s: %w", root, err)
	}
	return mods, nil
}
