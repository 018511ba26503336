package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// plot draws, over time, the offered call rate, the CPU used, the failed
// calls and the RSS of each balancer: four panels, one colour per
// balancer.
func plot(path string, rs []*result) error {
	const w, ph, pad = 1000, 220, 50
	panels := []struct {
		title string
		value func(s sample, prev *sample) float64
	}{
		{"offered call rate (CPS)", func(s sample, _ *sample) float64 { return float64(s.Rate) }},
		{"CPU (cores busy)", func(s sample, p *sample) float64 {
			if p == nil || s.T <= p.T {
				return 0
			}
			return (s.CPU - p.CPU) / (s.T - p.T)
		}},
		{"failed calls per second (average over each run)", func(s sample, _ *sample) float64 { return s.Failed }},
		{"RSS (MiB)", func(s sample, _ *sample) float64 { return s.RSSMiB }},
	}
	h := len(panels)*(ph+pad) + pad
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	colors := []color.RGBA{{200, 40, 40, 255}, {30, 90, 200, 255}, {30, 150, 60, 255}}
	var tmax float64
	for _, r := range rs {
		for _, s := range r.Series {
			tmax = max(tmax, s.T)
		}
	}
	if tmax == 0 {
		return fmt.Errorf("no samples")
	}
	for pi, p := range panels {
		top := pad + pi*(ph+pad)
		var vmax float64
		for _, r := range rs {
			for i, s := range r.Series {
				vmax = max(vmax, p.value(s, prevOf(r.Series, i)))
			}
		}
		if vmax == 0 {
			vmax = 1
		}
		label(img, pad, top-8, fmt.Sprintf("%s, max %.1f", p.title, vmax), color.Black)
		for x := pad; x < w-pad; x++ {
			img.Set(x, top+ph, color.Gray{120})
		}
		for y := top; y <= top+ph; y++ {
			img.Set(pad, y, color.Gray{120})
		}
		for ri, r := range rs {
			c := colors[ri%len(colors)]
			lx, ly := -1, -1
			for i, s := range r.Series {
				x := pad + int(s.T/tmax*float64(w-2*pad))
				y := top + ph - int(p.value(s, prevOf(r.Series, i))/vmax*float64(ph))
				if lx >= 0 {
					line(img, lx, ly, x, y, c)
				}
				lx, ly = x, y
			}
			if pi == 0 {
				label(img, w-pad-150, top+15+ri*14, r.Target, c)
			}
		}
	}
	label(img, pad, h-12, fmt.Sprintf("time (s), 0 .. %.0f", tmax), color.Black)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func prevOf(ss []sample, i int) *sample {
	if i == 0 {
		return nil
	}
	return &ss[i-1]
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

func sign(a int) int {
	switch {
	case a > 0:
		return 1
	case a < 0:
		return -1
	}
	return 0
}
