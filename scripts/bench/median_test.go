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
