// Command worldgen writes the map's committed assets: web/world.svg from the
// world-atlas 110m countries TopoJSON (see package world) and the app icons
// (an SVG and 192/512 px PNGs drawn here, so the PWA needs no outside URL).
// `make world` fetches world-atlas from npm and runs it through go generate.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/attackmap/attackmap/app/world"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worldgen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worldgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "world-atlas countries TopoJSON `file` (countries-110m.json)")
	out := fs.String("out", "", "SVG `file` to write (web/world.svg)")
	icons := fs.String("icons", "", "also write icon.svg, icon-192.png and icon-512.png into this `dir`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("need -in and -out")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	topo, err := world.Decode(data, "countries")
	if err != nil {
		return err
	}
	svg := world.SVG(topo, world.Options{Skip: []string{"010"}})
	if err := os.WriteFile(*out, svg, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d countries, %d bytes\n", *out, len(topo.Countries), len(svg))
	if *icons == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(*icons, "icon.svg"), []byte(iconSVG), 0o644); err != nil {
		return err
	}
	for _, size := range []int{192, 512} {
		var b bytes.Buffer
		if err := png.Encode(&b, drawIcon(size)); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*icons, fmt.Sprintf("icon-%d.png", size)), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// iconSVG is the app icon: a dark globe with a red marker and its pulse ring.
const iconSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">
<rect width="512" height="512" rx="96" fill="#0b1220"/>
<circle cx="256" cy="256" r="176" fill="#1c2a3f" stroke="#33465f" stroke-width="16"/>
<path d="M80 256h352M256 80c-60 50-60 302 0 352M256 80c60 50 60 302 0 352" fill="none" stroke="#33465f" stroke-width="12"/>
<circle cx="310" cy="210" r="70" fill="none" stroke="#ef4444" stroke-width="14" opacity=".5"/>
<circle cx="310" cy="210" r="38" fill="#ef4444"/>
</svg>
`

// drawIcon rasterises a simplified iconSVG (no meridians) with a one-pixel
// anti-aliased edge, enough for launcher icons. The marker stays inside the
// central 80% so the icon also works as a maskable one.
func drawIcon(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	bg := color.NRGBA{0x0b, 0x12, 0x20, 0xff}
	land := color.NRGBA{0x1c, 0x2a, 0x3f, 0xff}
	edge := color.NRGBA{0x33, 0x46, 0x5f, 0xff}
	red := color.NRGBA{0xef, 0x44, 0x44, 0xff}
	s := float64(size) / 512
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			px, py := (float64(x)+0.5)/s, (float64(y)+0.5)/s
			c := bg
			d := math.Hypot(px-256, py-256)
			c = mix(c, edge, cover(184-d, s))
			c = mix(c, land, cover(168-d, s))
			m := math.Hypot(px-310, py-210)
			c = mix(c, color.NRGBA{0x7a, 0x2c, 0x36, 0xff}, cover(7-math.Abs(m-70), s))
			c = mix(c, red, cover(38-m, s))
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// cover turns a signed distance (in icon units, positive inside) into pixel
// coverage.
func cover(d, scale float64) float64 {
	return math.Max(0, math.Min(1, d*scale+0.5))
}

func mix(a, b color.NRGBA, t float64) color.NRGBA {
	f := func(x, y uint8) uint8 { return uint8(math.Round(float64(x)*(1-t) + float64(y)*t)) }
	return color.NRGBA{f(a.R, b.R), f(a.G, b.G), f(a.B, b.B), 0xff}
}
