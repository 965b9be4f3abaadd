package live

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// HeatBands is how many intensity bands the heat layer draws, each as one
// SVG path: four reads as cool-to-hot without a legend of its own, and
// keeps the layer at four elements however many cells are hot.
const HeatBands = 4

// HeatEvery is the least time between two heat computations: density
// changes slowly compared with the pulses, and the layer is redrawn as a
// whole, so once a second is live enough and bounded.
const HeatEvery = time.Second

// HeatCellPx is the heat grid's cell on screen: coarse enough to read as
// areas rather than points, fine enough to follow coastlines at zoom 1.
const HeatCellPx = 12.0

// maxHeatCells bounds the cells with heat: each used marker touches at most
// nine (its cell and the neighbours the kernel spreads to), so 2,000
// markers stay under this; past it further cells are not added.
const maxHeatCells = 20000

// Heat is the density of the model's live incidents per grid cell, drawn
// as HeatBands paths (Paths[0] the coolest). The UI calls Update on its
// one-second tick; Gen changes when Paths did.
type Heat struct {
	Cell  float64
	Paths [HeatBands]string
	Gen   uint64

	at       time.Time
	modelGen uint64
	grid     map[cellKey]float64
	keys     []cellKey
}

// Update recomputes the heat for the model's markers on a grid of cell
// map units, unless it did so less than HeatEvery before now or neither
// the model nor the cell changed since. It reports whether Paths changed.
func (h *Heat) Update(m *Model, cell float64, now time.Time) bool {
	if !h.at.IsZero() && now.Sub(h.at) < HeatEvery || cell == h.Cell && m.Gen() == h.modelGen && !h.at.IsZero() {
		return false
	}
	h.at, h.modelGen, h.Cell = now, m.Gen(), cell
	if h.grid == nil {
		h.grid = make(map[cellKey]float64)
	}
	clear(h.grid)
	// Each marker spreads its count over its cell (half) and the eight
	// around it (the rest): a soft edge without a blur filter, which
	// would cost a full-layer filter pass on every repaint.
	for i := range m.Markers {
		mk := &m.Markers[i]
		if !mk.Used {
			continue
		}
		cx, cy := int32(math.Floor(mk.X/cell)), int32(math.Floor(mk.Y/cell))
		w := float64(mk.Count)
		for dy := int32(-1); dy <= 1; dy++ {
			for dx := int32(-1); dx <= 1; dx++ {
				k := cellKey{cx + dx, cy + dy}
				if _, ok := h.grid[k]; !ok && len(h.grid) >= maxHeatCells {
					continue
				}
				if dx == 0 && dy == 0 {
					h.grid[k] += w / 2
				} else {
					h.grid[k] += w / 16
				}
			}
		}
	}
	var paths [HeatBands]string
	if len(h.grid) > 0 {
		paths = h.draw(cell)
	}
	if paths == h.Paths {
		return false
	}
	h.Paths = paths
	h.Gen++
	return true
}

// band sorts an intensity into 0..HeatBands-1 on a log scale up to top,
// so that one busy place does not wash every other out.
func band(v, top float64) int {
	if top <= 0 {
		return 0
	}
	b := int(math.Ceil(float64(HeatBands)*math.Log1p(v)/math.Log1p(top))) - 1
	return max(0, min(HeatBands-1, b))
}

// draw writes one path per band: the cells of a row with the same band are
// merged into one rectangle, in row order so the output is stable.
func (h *Heat) draw(cell float64) [HeatBands]string {
	h.keys = h.keys[:0]
	top := 0.0
	for k, v := range h.grid {
		h.keys = append(h.keys, k)
		top = math.Max(top, v)
	}
	slices.SortFunc(h.keys, func(a, b cellKey) int {
		if a.y != b.y {
			return int(a.y) - int(b.y)
		}
		return int(a.x) - int(b.x)
	})
	var out [HeatBands]string
	var bufs [HeatBands][]byte
	f := func(b []byte, v float64) []byte { return strconv.AppendFloat(b, math.Round(v*10)/10, 'f', -1, 64) }
	for i := 0; i < len(h.keys); {
		k := h.keys[i]
		b := band(h.grid[k], top)
		j := i + 1
		for j < len(h.keys) && h.keys[j].y == k.y && h.keys[j].x == h.keys[j-1].x+1 && band(h.grid[h.keys[j]], top) == b {
			j++
		}
		p := bufs[b]
		p = append(p, 'M')
		p = f(p, float64(k.x)*cell)
		p = append(p, ' ')
		p = f(p, float64(k.y)*cell)
		p = append(p, 'h')
		p = f(p, float64(j-i)*cell)
		p = append(p, 'v')
		p = f(p, cell)
		p = append(p, 'h')
		p = f(p, -float64(j-i)*cell)
		p = append(p, 'z')
		bufs[b] = p
		i = j
	}
	for b := range bufs {
		out[b] = string(bufs[b])
	}
	return out
}
