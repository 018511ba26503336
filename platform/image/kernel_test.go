package image

import (
	"errors"
	"slices"
	"testing"

	"github.com/sipedge/sipedge/platform"
)

// TestProfilesAgainstDebianKernel checks every board profile's module
// order against the real .ko files of Debian's kernel package (fetched
// into cache/ as the image build does).
func TestProfilesAgainstDebianKernel(t *testing.T) {
	k, err := FetchKernel(needKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	found, err := platform.FindModules(k.ModuleRoot)
	if err != nil {
		t.Fatal(err)
	}
	dep := func(n string) ([]string, error) {
		p, ok := found[platform.NormModule(n)]
		if !ok {
			return nil, errors.New("not in the kernel package")
		}
		return platform.ModDepends(p)
	}
	builtin := func(n string) bool { _, ok := found[platform.NormModule(n)]; return !ok }
	for _, n := range platform.Names() {
		p, _ := platform.Lookup(n)
		if err := p.CheckOrder(dep, builtin); err != nil {
			t.Error(err)
		}
		for _, m := range p.Modules {
			if _, ok := found[platform.NormModule(m.Name)]; !ok && !m.Optional {
				t.Errorf("%s: required module %s is not in the kernel package", n, m.Name)
			}
		}
	}
	if d, _ := platform.ModDepends(found["i6300esb"]); !slices.Equal(d, []string{"watchdog"}) {
		t.Errorf("i6300esb depends = %v, want [watchdog]", d)
	}
}
