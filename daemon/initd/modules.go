package initd

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/sipedge/sipedge/platform"
)

// ModuleDir is where the image keeps the profile's modules, flat, as
// <name>.ko (scripts/image.sh puts them there).
const ModuleDir = "/lib/modules"

// ModuleLoader loads one .ko file with its parameters (finit_module).
type ModuleLoader func(path, params string) error

// ModuleResult is what happened to one module.
type ModuleResult struct {
	Name string
	Err  error // nil: loaded (or already loaded)
	// Skipped is true for an optional module that is absent or whose
	// hardware is missing.
	Skipped bool
}

// Sentinel conditions a loader reports (the Linux loader maps EEXIST,
// ENOENT and ENODEV to these).
var (
	ErrModuleLoaded = errors.New("module already loaded")
	ErrNoDevice     = errors.New("no such device")
)

// LoadModules loads mods from dir in order. An already loaded module is
// fine; an optional module that is absent or finds no hardware is
// skipped; any other failure of a required module stops the loading.
func LoadModules(dir string, mods []platform.Module, load ModuleLoader) ([]ModuleResult, error) {
	var res []ModuleResult
	for _, m := range mods {
		p := filepath.Join(dir, platform.NormModule(m.Name)+".ko")
		err := load(p, m.Params)
		r := ModuleResult{Name: m.Name}
		switch {
		case err == nil, errors.Is(err, ErrModuleLoaded):
		case m.Optional && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoDevice)):
			r.Skipped, r.Err = true, err
		default:
			r.Err = err
			res = append(res, r)
			return res, fmt.Errorf("initd: load module %s: %w", m.Name, err)
		}
		res = append(res, r)
	}
	return res, nil
}
