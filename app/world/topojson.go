// Package world turns the world-atlas TopoJSON countries (Natural Earth,
// public domain) into the map's background: a compact SVG whose paths are
// already projected with package geo, so the browser draws it as one image
// and the live markers line up with it exactly.
//
// Decode is a small TopoJSON reader for what world-atlas uses (quantized,
// delta-encoded arcs; Polygon and MultiPolygon geometries); SVG writes the
// asset. The generator that runs them is app/cmd/worldgen (`make world`).
package world

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/paulmach/orb"
)

// Limits that keep a hostile or corrupt input from exhausting memory: the
// 110m file has 595 arcs and 8,246 positions, the 10m one about 110,000
// positions; these leave ample room above both.
const (
	MaxBytes     = 64 << 20
	MaxPositions = 4_000_000
	MaxRings     = 1_000_000
)

// Country is one geometry of the collection: its ISO 3166-1 numeric id (may
// be empty: world-atlas has a few unrecognised territories), its name, its
// rings as lon/lat polygons, and the indexes of the arcs that form it.
type Country struct {
	ID       string
	Name     string
	Polygons orb.MultiPolygon
	Arcs     []int
}

// Topology is a decoded TopoJSON topology: the arcs in lon/lat and the
// countries of one geometry collection.
type Topology struct {
	Arcs      []orb.LineString
	Countries []Country
}

type rawTopology struct {
	Type      string `json:"type"`
	Transform *struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Objects map[string]json.RawMessage `json:"objects"`
	Arcs    [][][]float64              `json:"arcs"`
}

type rawCollection struct {
	Type       string        `json:"type"`
	Geometries []rawGeometry `json:"geometries"`
}

type rawGeometry struct {
	Type       string          `json:"type"`
	ID         any             `json:"id"`
	Properties json.RawMessage `json:"properties"`
	Arcs       json.RawMessage `json:"arcs"`
}

// Decode reads a TopoJSON topology and the geometry collection named object
// (world-atlas calls it "countries"). Errors are one line, prefixed "world:".
func Decode(data []byte, object string) (*Topology, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("world: %d bytes, over the %d byte limit", len(data), MaxBytes)
	}
	var raw rawTopology
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("world: not TopoJSON: %w", err)
	}
	if raw.Type != "Topology" {
		return nil, fmt.Errorf("world: type %q, want \"Topology\"", raw.Type)
	}
	t := &Topology{Arcs: make([]orb.LineString, len(raw.Arcs))}
	total := 0
	for i, arc := range raw.Arcs {
		total += len(arc)
		if total > MaxPositions {
			return nil, fmt.Errorf("world: more than %d positions", MaxPositions)
		}
		line := make(orb.LineString, len(arc))
		var x, y float64
		for j, pos := range arc {
			if len(pos) < 2 {
				return nil, fmt.Errorf("world: arc %d position %d has %d coordinates", i, j, len(pos))
			}
			if raw.Transform != nil {
				// Quantized topologies store deltas from the previous position.
				x, y = x+pos[0], y+pos[1]
				line[j] = orb.Point{x*raw.Transform.Scale[0] + raw.Transform.Translate[0],
					y*raw.Transform.Scale[1] + raw.Transform.Translate[1]}
			} else {
				line[j] = orb.Point{pos[0], pos[1]}
			}
		}
		t.Arcs[i] = line
	}
	obj, ok := raw.Objects[object]
	if !ok {
		return nil, fmt.Errorf("world: no object %q", object)
	}
	var coll rawCollection
	if err := json.Unmarshal(obj, &coll); err != nil {
		return nil, fmt.Errorf("world: object %q: %w", object, err)
	}
	if coll.Type != "GeometryCollection" {
		return nil, fmt.Errorf("world: object %q is a %q, want a GeometryCollection", object, coll.Type)
	}
	rings := 0
	for gi, g := range coll.Geometries {
		c := Country{ID: idString(g.ID)}
		var props struct {
			Name string `json:"name"`
		}
		if len(g.Properties) > 0 {
			_ = json.Unmarshal(g.Properties, &props) // a name is optional
		}
		c.Name = props.Name
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			if err := json.Unmarshal(g.Arcs, &p); err != nil {
				return nil, fmt.Errorf("world: geometry %d: polygon arcs: %w", gi, err)
			}
			polys = [][][]int{p}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polys); err != nil {
				return nil, fmt.Errorf("world: geometry %d: multipolygon arcs: %w", gi, err)
			}
		default:
			continue // null geometries and points have no area to draw
		}
		for _, p := range polys {
			var poly orb.Polygon
			for _, ringArcs := range p {
				if rings++; rings > MaxRings {
					return nil, fmt.Errorf("world: more than %d rings", MaxRings)
				}
				ring, err := t.ring(ringArcs)
				if err != nil {
					return nil, fmt.Errorf("world: geometry %d (%s): %w", gi, c.Name, err)
				}
				for _, a := range ringArcs {
					c.Arcs = append(c.Arcs, arcIndex(a))
				}
				poly = append(poly, ring)
			}
			if len(poly) > 0 {
				c.Polygons = append(c.Polygons, poly)
			}
		}
		t.Countries = append(t.Countries, c)
	}
	return t, nil
}

// arcIndex resolves TopoJSON's one's-complement reversed references.
func arcIndex(a int) int {
	if a < 0 {
		return ^a
	}
	return a
}

// ring joins arcs into a closed ring; a negative index means the arc
// reversed, and each arc after the first repeats its predecessor's last
// position, which is dropped.
func (t *Topology) ring(arcs []int) (orb.Ring, error) {
	var ring orb.Ring
	total := 0
	for _, a := range arcs {
		i := arcIndex(a)
		if i >= len(t.Arcs) {
			return nil, fmt.Errorf("arc %d does not exist (%d arcs)", i, len(t.Arcs))
		}
		line := t.Arcs[i]
		if total += len(line); total > MaxPositions {
			return nil, errors.New("ring too long")
		}
		start := 0
		if len(ring) > 0 {
			start = 1
		}
		for j := start; j < len(line); j++ {
			k := j
			if a < 0 {
				k = len(line) - 1 - j
			}
			ring = append(ring, line[k])
		}
	}
	return ring, nil
}

func idString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprintf("%03d", int(v))
	}
	return ""
}
