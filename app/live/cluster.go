package live

import (
	"math"
	"slices"
	"time"

	"github.com/attackmap/attackmap/incident"
)

// ClusterPx is the screen distance under which markers merge: a marker is
// about 10-16 px across, so at 24 px two circles would touch or overlap.
const ClusterPx = 24.0

// Cluster is one merged group of markers at a zoom level.
type Cluster struct {
	// X, Y are the count-weighted centre of the members, map units.
	X, Y float64
	// Count is the incidents in the members; Markers the members.
	Count, Markers int
	// Severity is the highest of the members.
	Severity incident.Severity
	// Rep is the member slot the cluster is drawn in: the one updated
	// last, so that news anywhere in the cluster shows the newest pulse.
	Rep int
	// Pulse is Rep's Pulse (see Marker): a change redraws the cluster.
	Pulse uint8

	updated time.Time
	key     cellKey
	// sx, sy, w are the weighted sums the centre is computed from.
	sx, sy, w float64
}

// merge adds cluster o to c.
func (c *Cluster) merge(o *Cluster) {
	c.sx, c.sy, c.w = c.sx+o.sx, c.sy+o.sy, c.w+o.w
	c.Count += o.Count
	c.Markers += o.Markers
	if o.Severity.Rank() > c.Severity.Rank() {
		c.Severity = o.Severity
	}
	if o.updated.After(c.updated) || o.updated.Equal(c.updated) && o.Rep < c.Rep {
		c.Rep, c.updated = o.Rep, o.updated
	}
}

// SlotView is how one marker slot is drawn at the current level.
type SlotView struct {
	// Hidden slots are members of a cluster drawn in another slot.
	Hidden bool
	// Cluster is the index into Clustering.Clusters when the slot belongs
	// to a cluster of two or more markers (drawn by it unless Hidden),
	// else -1.
	Cluster int
}

// Clustering is the markers grouped at one level, with per-chunk
// generations like the model's: the UI re-renders a marker chunk when its
// model generation or its cluster generation changed.
type Clustering struct {
	Cell float64 // grid cell, map units
	// Now is the time of the last Update, for Marker.Pulsing.
	Now      time.Time
	Clusters []Cluster
	Slots    []SlotView
	// ChunkGen changes for a chunk whose slots are drawn differently than
	// at the previous Update.
	ChunkGen []uint64

	gen   uint64
	cells map[cellKey]int
	prev  []Cluster
	// members lists the slots of each cluster (flattened: memberAt[i] is
	// the start of cluster i's slots in members).
	members  []int
	memberAt []int
	// spare and fill are reused buffers (the previous Slots, and the
	// counting sort's cursor), so a steady map clusters without
	// allocating.
	spare []SlotView
	fill  []int
	// parent is the union-find forest of pass 2, remap the final index
	// of each root.
	parent, remap []int
}

func (c *Clustering) find(i int) int {
	for c.parent[i] != i {
		c.parent[i] = c.parent[c.parent[i]]
		i = c.parent[i]
	}
	return i
}

// neighbours are the cells pass 2 looks at from each cell: half of the
// eight around it, so that each pair is looked at once.
var neighbours = [...]cellKey{{1, 0}, {-1, 1}, {0, 1}, {1, 1}}

// ClusterCell is the grid cell in map units for level l on screen s:
// ClusterPx at that level's zoom.
func ClusterCell(s Screen, l int) float64 { return ClusterPx / (s.Scale() * LevelZoom(l)) }

// Update groups the model's used markers by a grid of cell map units:
// markers in one cell merge when there are two or more. The work is one
// pass over the slots and one map lookup per used marker (at most
// Config.MaxMarkers), whatever the zoom; it allocates only when the
// number of slots or clusters grows.
func (c *Clustering) Update(m *Model, cell float64, now time.Time) {
	c.Now = now
	if c.cells == nil {
		c.cells = make(map[cellKey]int)
	}
	clear(c.cells)
	c.prev = append(c.prev[:0], c.Clusters...)
	prevSlots := c.Slots
	slots := c.spare[:0]
	c.Cell = cell
	c.Clusters = c.Clusters[:0]
	n := len(m.Markers)
	// Pass 1: cluster index per slot (kept in Slots[i].Cluster for now).
	slots = slices.Grow(slots, n)[:n]
	for i := range m.Markers {
		mk := &m.Markers[i]
		slots[i] = SlotView{Cluster: -1}
		if !mk.Used {
			continue
		}
		k := cellKey{int32(math.Floor(mk.X / cell)), int32(math.Floor(mk.Y / cell))}
		ci, ok := c.cells[k]
		if !ok {
			ci = len(c.Clusters)
			c.cells[k] = ci
			c.Clusters = append(c.Clusters, Cluster{Rep: i, updated: mk.updated, Severity: incident.Info, key: k})
		}
		cl := &c.Clusters[ci]
		w := float64(max(mk.Count, 1))
		cl.sx, cl.sy, cl.w = cl.sx+mk.X*w, cl.sy+mk.Y*w, cl.w+w
		cl.Count += mk.Count
		cl.Markers++
		if mk.Severity.Rank() > cl.Severity.Rank() {
			cl.Severity = mk.Severity
		}
		if mk.updated.After(cl.updated) {
			cl.Rep, cl.updated = i, mk.updated
		}
		slots[i].Cluster = ci
	}
	// Pass 2: a grid puts two markers a pixel apart into two cells when a
	// cell border runs between them. Neighbouring cells whose centres are
	// closer than a cell merge (with union-find; the merged centre is
	// compared further on, so a dense region does not chain into one).
	c.parent = c.parent[:0]
	for i := range c.Clusters {
		c.parent = append(c.parent, i)
	}
	for i := range c.Clusters {
		k := c.Clusters[i].key
		for _, d := range neighbours {
			j, ok := c.cells[cellKey{k.x + d.x, k.y + d.y}]
			if !ok {
				continue
			}
			a, b := c.find(i), c.find(j)
			if a == b {
				continue
			}
			ca, cb := &c.Clusters[a], &c.Clusters[b]
			dx, dy := ca.sx/ca.w-cb.sx/cb.w, ca.sy/ca.w-cb.sy/cb.w
			if dx*dx+dy*dy >= cell*cell {
				continue
			}
			if b < a {
				a, b, ca, cb = b, a, cb, ca
			}
			ca.merge(cb)
			c.parent[b] = a
		}
	}
	c.remap = c.remap[:0]
	roots := 0
	for i := range c.Clusters {
		if c.find(i) == i {
			c.remap = append(c.remap, roots)
			c.Clusters[roots] = c.Clusters[i]
			roots++
		} else {
			c.remap = append(c.remap, -1)
		}
	}
	for i := range slots {
		if ci := slots[i].Cluster; ci >= 0 {
			slots[i].Cluster = c.remap[c.find(ci)]
		}
	}
	c.Clusters = c.Clusters[:roots]
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		cl.X, cl.Y = round1(cl.sx/cl.w), round1(cl.sy/cl.w)
		cl.Pulse = m.Markers[cl.Rep].Pulse
	}
	// Members, grouped by cluster (a counting sort).
	c.memberAt = append(c.memberAt[:0], make([]int, len(c.Clusters)+1)...)
	for _, s := range slots {
		if s.Cluster >= 0 {
			c.memberAt[s.Cluster+1]++
		}
	}
	for i := 1; i < len(c.memberAt); i++ {
		c.memberAt[i] += c.memberAt[i-1]
	}
	c.members = append(c.members[:0], make([]int, c.memberAt[len(c.Clusters)])...)
	c.fill = append(c.fill[:0], c.memberAt[:len(c.Clusters)]...)
	fill := c.fill
	for i, s := range slots {
		if s.Cluster >= 0 {
			c.members[fill[s.Cluster]] = i
			fill[s.Cluster]++
		}
	}
	// Pass 2: what each slot draws.
	for i := range slots {
		ci := slots[i].Cluster
		if ci < 0 || c.Clusters[ci].Markers < 2 {
			slots[i] = SlotView{Cluster: -1}
			continue
		}
		slots[i].Hidden = c.Clusters[ci].Rep != i
	}
	c.Slots = slots
	c.dirtyChunks(m, prevSlots)
	c.spare = prevSlots
}

// dirtyChunks bumps the generation of every chunk with a slot drawn
// differently than before: hidden or shown, or a cluster that moved,
// grew, changed colour or pulsed.
func (c *Clustering) dirtyChunks(m *Model, prevSlots []SlotView) {
	size := m.cfg.ChunkSize
	for len(c.ChunkGen)*size < len(c.Slots) {
		c.ChunkGen = append(c.ChunkGen, 0)
	}
	c.gen++
	for i, s := range c.Slots {
		var was SlotView
		if i < len(prevSlots) {
			was = prevSlots[i]
		} else {
			was = SlotView{Cluster: -1}
		}
		same := s.Hidden == was.Hidden && (s.Cluster < 0) == (was.Cluster < 0)
		if same && s.Cluster >= 0 && !s.Hidden {
			a, b := c.Clusters[s.Cluster], c.prev[was.Cluster]
			same = a.X == b.X && a.Y == b.Y && a.Count == b.Count && a.Markers == b.Markers &&
				a.Severity == b.Severity && a.Pulse == b.Pulse
		}
		if !same {
			c.ChunkGen[i/size] = c.gen
		}
	}
}

// Members returns the marker slots of cluster i. Do not modify.
func (c *Clustering) Members(i int) []int {
	if i < 0 || i+1 >= len(c.memberAt) {
		return nil
	}
	return c.members[c.memberAt[i]:c.memberAt[i+1]]
}

// SplitLevel is the lowest level above from at which cluster i's members
// no longer share one grid cell on screen s (the zoom a click on the
// cluster goes to), or Levels-1 when they stay together to the end (one
// aggregation cell apart at most).
func (c *Clustering) SplitLevel(m *Model, s Screen, i, from int) int {
	members := c.Members(i)
	if len(members) < 2 {
		return min(from+1, Levels-1)
	}
	// Clustering the whole map again per level (at most Levels times, on
	// a click) keeps the answer the same as what Update will draw there.
	var at Clustering
	for l := from + 1; l < Levels; l++ {
		at.Update(m, ClusterCell(s, l), c.Now)
		first := at.Slots[members[0]].Cluster
		for _, slot := range members[1:] {
			if first < 0 || at.Slots[slot].Cluster != first {
				return l
			}
		}
	}
	return Levels - 1
}

// ClusterRadius is a cluster's radius in map units at zoom 1: bigger
// than a single marker's, growing with the markers merged.
func ClusterRadius(markers int) float64 {
	return 6 + math.Min(6, 1.5*math.Log2(float64(max(markers, 1))))
}

// Pulsing reports whether the marker's pulse, restarted by its latest
// activity, still runs at now. A slot shown again (a cluster splitting,
// another member becoming a cluster's face) is drawn settled once its
// pulse is over, so zooming never replays old pulses.
func (m *Marker) Pulsing(now time.Time) bool {
	return !m.Still && now.Sub(m.updated) < PulseDuration
}
