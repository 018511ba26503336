package balancer

import (
	"fmt"
	"testing"
)

func testPool(t *testing.T, alg string, cores ...CoreConfig) *pool {
	t.Helper()
	p := newPool(alg, nil)
	for _, c := range cores {
		if _, err := p.add(c); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func cc(name string, weight, max int) CoreConfig {
	return CoreConfig{Name: name, Address: "192.0.2.1:5060", Weight: weight, MaxCalls: max}
}

func TestPickSpread(t *testing.T) {
	tests := []struct {
		alg   string
		cores []CoreConfig
		n     int
		want  map[string]int
	}{
		{RoundRobin, []CoreConfig{cc("a", 1, 0), cc("b", 5, 0)}, 60, map[string]int{"a": 30, "b": 30}},
		{Weighted, []CoreConfig{cc("a", 3, 0), cc("b", 1, 0)}, 40, map[string]int{"a": 30, "b": 10}},
		{Weighted, []CoreConfig{cc("a", 1, 0), cc("b", 1, 0), cc("c", 2, 0)}, 40, map[string]int{"a": 10, "b": 10, "c": 20}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			p := testPool(t, tt.alg, tt.cores...)
			got := map[string]int{}
			for i := 0; i < tt.n; i++ {
				got[p.pick(fmt.Sprint("call", i), nil).name]++
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %v, want %v", tt.alg, got, tt.want)
				}
			}
		})
	}
}

func TestPickLeastLoadLargestFreeSlot(t *testing.T) {
	p := testPool(t, LeastLoad, cc("a", 1, 10), cc("b", 1, 100), cc("c", 1, 50))
	a, b, c := p.get("a"), p.get("b"), p.get("c")
	b.calls.Store(95) // 5 free
	c.calls.Store(30) // 20 free
	a.calls.Store(2)  // 8 free
	for i := 0; i < 5; i++ {
		got := p.pick("x", nil)
		if got != c {
			t.Fatalf("pick %d: %s, want c (largest free slot)", i, got.name)
		}
		got.pending.Add(1)
	}
	c.calls.Store(50)
	if got := p.pick("x", nil); got != a {
		t.Fatalf("with c full: %s, want a", got.name)
	}
	a.calls.Store(10)
	b.calls.Store(100)
	if got := p.pick("x", nil); got != nil {
		t.Fatalf("all full: %s, want none", got.name)
	}
}

func TestPickSkipsUnavailable(t *testing.T) {
	p := testPool(t, RoundRobin, cc("a", 1, 0), cc("b", 1, 1), cc("c", 1, 0), cc("d", 1, 0))
	p.get("a").mu.Lock()
	p.get("a").up = false
	p.get("a").recompute()
	p.get("a").mu.Unlock()
	p.get("b").calls.Store(1) // full
	if err := p.setAdmin("c", adminDraining); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if got := p.pick("x", nil); got == nil || got.name != "d" {
			t.Fatalf("got %v, want d", got)
		}
	}
	if got := p.pick("x", []*Core{p.get("d")}); got != nil {
		t.Fatalf("excluding d: got %s, want none", got.name)
	}
	// A trying Core is used only when no active one is left.
	d := p.get("d")
	d.mu.Lock()
	d.suspect = true
	d.recompute()
	d.mu.Unlock()
	if got := p.pick("x", nil); got != d {
		t.Fatalf("only trying left: got %v, want d", got)
	}
}

// TestCallHashConsistent checks that Call-ID hashing is stable and that a
// dead Core's share spreads over all the others.
func TestCallHashConsistent(t *testing.T) {
	p := testPool(t, CallHash, cc("a", 1, 0), cc("b", 1, 0), cc("c", 1, 0), cc("d", 1, 0))
	const n = 20000
	before := make([]string, n)
	share := map[string]int{}
	for i := range before {
		before[i] = p.pick(fmt.Sprintf("%d@caller", i), nil).name
		share[before[i]]++
	}
	for k, v := range share {
		if v < n/4*80/100 || v > n/4*120/100 {
			t.Errorf("core %s has %d of %d calls: uneven ring %v", k, v, n, share)
		}
	}
	dead := p.get("b")
	dead.mu.Lock()
	dead.up = false
	dead.recompute()
	dead.mu.Unlock()
	moved := map[string]int{}
	for i := range before {
		now := p.pick(fmt.Sprintf("%d@caller", i), nil).name
		if before[i] != "b" && now != before[i] {
			t.Fatalf("call %d moved from live core %s to %s", i, before[i], now)
		}
		if before[i] == "b" {
			moved[now]++
		}
	}
	for _, k := range []string{"a", "c", "d"} {
		if moved[k] < share["b"]/3*60/100 {
			t.Errorf("dead core's calls not spread: %v", moved)
		}
	}
}

// TestPickSpreadsOverUsable: with one of three Cores down, disabled or
// full, its share goes to the two others evenly, not to its successor
// in the pool alone.
func TestPickSpreadsOverUsable(t *testing.T) {
	unusable := map[string]func(p *pool, c *Core){
		"down": func(_ *pool, c *Core) {
			c.mu.Lock()
			c.up = false
			c.recompute()
			c.mu.Unlock()
		},
		"disabled": func(p *pool, c *Core) { p.setAdmin(c.name, adminDisabled) },
		"full":     func(_ *pool, c *Core) { c.calls.Store(1) },
	}
	for _, alg := range []string{RoundRobin, Weighted, LeastLoad} {
		for how, off := range unusable {
			for _, dead := range []string{"a", "b", "c"} {
				t.Run(alg+"/"+how+"/"+dead, func(t *testing.T) {
					p := testPool(t, alg, cc("a", 1, 0), cc("b", 1, 0), cc("c", 1, 0))
					p.get(dead).maxCalls.Store(1)
					off(p, p.get(dead))
					const n = 3000
					got := map[string]int{}
					for i := 0; i < n; i++ {
						got[p.pick(fmt.Sprint("call", i), nil).name]++
					}
					if got[dead] != 0 {
						t.Fatalf("%s core %s got %d calls", how, dead, got[dead])
					}
					for _, k := range []string{"a", "b", "c"} {
						if k != dead && (got[k] < n/2*95/100 || got[k] > n/2*105/100) {
							t.Fatalf("shares %v, want about %d each for the two usable Cores", got, n/2)
						}
					}
				})
			}
		}
	}
}
