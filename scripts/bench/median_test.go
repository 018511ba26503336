package main

import "testing"

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{0.9}, 0.9},
		{[]float64{1.2, 0.8, 0.9}, 0.9},
		{[]float64{1.16, 0.81, 0.93, 0.89, 0.98, 0.94}, 0.935},
	} {
		if got := median(tc.in); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	steps := []int{2000, 3000, 4000, 5000, 6000, 7000, 8000}
	for _, tc := range []struct{ rate, want int }{
		{8000, 7000},
		{7000, 6000},
		{2000, 1600}, // no step below: 80 %
		{1000, 800},  // below the ladder (no clean step: half the first)
		{7500, 7000},
	} {
		if got := backoff(tc.rate, steps); got != tc.want {
			t.Errorf("backoff(%d) = %d, want %d", tc.rate, got, tc.want)
		}
	}
	if got := backoff(5000, []int{8000, 2000, 4000}); got != 4000 {
		t.Errorf("backoff over an unsorted ladder = %d, want 4000", got)
	}
	if got := backoff(5000, []int{4000, 3000}); got != 4000 {
		t.Errorf("backoff(5000) over 4000, 3000 = %d, want 4000", got)
	}
}
