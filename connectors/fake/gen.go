package fake

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/ferrydb/ferry/model"
)

// columns of every fake table: one of each canonical type a database commonly
// has, some nullable.
var columns = []model.Column{
	{Name: "id", Type: model.Type{Kind: model.KindInt64}},
	{Name: "small", Type: model.Type{Kind: model.KindInt16}, Nullable: true},
	{Name: "qty", Type: model.Type{Kind: model.KindInt32}, Nullable: true},
	{Name: "price", Type: model.Type{Kind: model.KindDecimal, Precision: 18, Scale: 4}, Nullable: true},
	{Name: "ratio", Type: model.Type{Kind: model.KindFloat32}, Nullable: true},
	{Name: "score", Type: model.Type{Kind: model.KindFloat64}, Nullable: true},
	{Name: "active", Type: model.Type{Kind: model.KindBool}, Nullable: true},
	{Name: "name", Type: model.Type{Kind: model.KindText}, Nullable: true},
	{Name: "blob", Type: model.Type{Kind: model.KindBytes}, Nullable: true},
	{Name: "doc", Type: model.Type{Kind: model.KindJSON}, Nullable: true},
	{Name: "uid", Type: model.Type{Kind: model.KindUUID}, Nullable: true},
	{Name: "day", Type: model.Type{Kind: model.KindDate}, Nullable: true},
	{Name: "created_at", Type: model.Type{Kind: model.KindTimestampTZ}, Nullable: true},
	{Name: "local_ts", Type: model.Type{Kind: model.KindTimestamp}, Nullable: true},
	{Name: "note", Type: model.Type{Kind: model.KindText}, Nullable: true},
	{Name: "pad", Type: model.Type{Kind: model.KindText}, Nullable: true},
}

var words = []string{"ferry", "rivière", "Fähre", "フェリー", "паром", "🚢", "über", "naïve", "façade", "東京", "data", "sync", "crab 🦀", "O'Brien", "a,b", "line\nbreak", `"quoted"`}

// mix is splitmix64: a fast, well-distributed hash of a 64-bit value.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const hexDigits = "0123456789abcdef"

func (g *gen) filler() string {
	if g.cfg.Width == 0 {
		return ""
	}
	return g.pad
}

// gen produces rows and changes from the config alone.
type gen struct {
	cfg Config
	pad string // a long filler string rows take slices of
}

func newGen(cfg Config) *gen {
	b := make([]byte, cfg.Width+64)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[mix(cfg.Seed+uint64(i))%36]
	}
	return &gen{cfg: cfg, pad: string(b)}
}

func tableName(i int) model.Namespace {
	return model.Namespace{Schema: "fake", Table: "t" + strconv.Itoa(i+1)}
}

// row returns the row of table t with key id as written by the change at
// version (0 for the row as it is at T0). All its text values share one
// backing string, which keeps generation cheap enough to measure the engine.
// Values come from the slab s (one per reader): model.Slab.
func (g *gen) row(s *model.Slab, t int, id int64, version int64) model.Row {
	r := mix(g.cfg.Seed ^ uint64(t)<<56 ^ uint64(id)*0x100000001b3 ^ uint64(version)<<20)
	r2 := mix(r)
	buf := make([]byte, 0, 192)
	mark := func() int { return len(buf) }
	// price
	p0 := mark()
	buf = strconv.AppendInt(buf, int64(r>>20)%100000000, 10)
	buf = append(buf, '.')
	frac := r2 % 10000
	buf = append(buf, byte('0'+frac/1000), byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
	// name
	p1 := mark()
	buf = append(buf, words[r%uint64(len(words))]...)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, id, 10)
	// doc
	p2 := mark()
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, `,"v":`...)
	buf = strconv.AppendInt(buf, version, 10)
	buf = append(buf, `,"tags":["`...)
	buf = append(buf, jsonWords[r2%7]...)
	buf = append(buf, `"],"ok":true}`...)
	// uid
	p3 := mark()
	x, y := r, r2
	for i, j := 0, 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			buf = append(buf, '-')
			continue
		}
		var nib uint64
		if j < 16 {
			nib = (x >> (4 * j)) & 15
		} else {
			nib = (y >> (4 * (j - 16))) & 15
		}
		buf = append(buf, hexDigits[nib])
		j++
	}
	// note
	p4 := mark()
	if id%7 != 0 {
		buf = append(buf, "note for "...)
		buf = strconv.AppendInt(buf, id, 10)
	}
	p5 := mark()
	str := s.Text(buf)

	row := s.Row(len(columns))
	row[0] = s.Int64(id)
	row[1] = s.Int64(int64(int16(r)))
	row[2] = s.Int64(int64(int32(r >> 16)))
	row[3] = s.String(str[p0:p1])
	row[4] = s.Float64(float64(float32(r%100000) / 7))
	row[5] = s.Float64(float64(int64(r2>>11)) / float64(1<<20))
	row[6] = r&1 == 1
	row[7] = s.String(str[p1:p2])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r2)
	b[3] = 0 // a NUL byte in every blob
	row[8] = s.Bytes(b[:])
	row[9] = s.String(str[p2:p3])
	row[10] = s.String(str[p3:p4])
	row[11] = s.Time(time.Date(1960+int(r%100), time.Month(1+r2%12), 1+int(r%28), 0, 0, 0, 0, time.UTC))
	row[12] = s.Time(time.Unix(1_600_000_000+int64(r%100_000_000), int64(r2%1_000_000)*1000).UTC())
	row[13] = s.Time(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r2%1_000_000_000_000) * time.Microsecond))
	if p5 > p4 {
		row[14] = s.String(str[p4:p5])
	}
	if w := g.cfg.Width; w > 0 {
		off := int(r % 64)
		row[15] = s.String(g.pad[off : off+w])
	} else {
		row[15] = ""
	}
	if id%11 == 0 { // NULLs in several types
		row[3], row[9], row[11] = nil, nil, nil
	}
	return row
}

// jsonWords are words safe inside a JSON string without escaping.
var jsonWords = []string{"ferry", "rivière", "Fähre", "フェリー", "паром", "🚢", "über"}

// rowBytes approximates a row's size.
func (g *gen) rowBytes() int64 { return int64(200 + g.cfg.Width) }

// change is one step of the change stream.
type change struct {
	table int
	op    model.Op
	id    int64
}

// history replays the change stream's key choices: which table, operation
// and key each change has. It is sequential: change n depends on which keys
// changes 1..n-1 created and deleted.
type history struct {
	cfg     Config
	n       int64 // changes taken so far
	maxKey  []int64
	deleted []map[int64]bool
	live    []int64
}

func newHistory(cfg Config) *history {
	h := &history{cfg: cfg, maxKey: make([]int64, cfg.Tables), deleted: make([]map[int64]bool, cfg.Tables), live: make([]int64, cfg.Tables)}
	for i := range h.maxKey {
		h.maxKey[i] = cfg.Rows
		h.live[i] = cfg.Rows
		h.deleted[i] = map[int64]bool{}
	}
	return h
}

// next returns change n+1.
func (h *history) next() change {
	h.n++
	r := mix(h.cfg.Seed*0x51_7cc1_b727_220a ^ uint64(h.n))
	t := int(r % uint64(h.cfg.Tables))
	roll := (r >> 16) % 100
	var op model.Op
	switch {
	case h.live[t] < 2 || roll < 30:
		op = model.OpInsert
	case roll < 85:
		op = model.OpUpdate
	default:
		op = model.OpDelete
	}
	if op == model.OpInsert {
		h.maxKey[t]++
		h.live[t]++
		return change{table: t, op: op, id: h.maxKey[t]}
	}
	// Pick a live key: re-roll over deleted ones, a bounded number of times
	// (deterministically), and insert instead if every roll hit a deleted key.
	id := int64(0)
	for try := uint64(0); try < 16; try++ {
		k := 1 + int64(mix(r+try)%uint64(h.maxKey[t]))
		if !h.deleted[t][k] {
			id = k
			break
		}
	}
	if id == 0 {
		h.maxKey[t]++
		h.live[t]++
		return change{table: t, op: model.OpInsert, id: h.maxKey[t]}
	}
	if op == model.OpDelete {
		h.deleted[t][id] = true
		h.live[t]--
	}
	return change{table: t, op: op, id: id}
}

// stateAt computes, for table t and keys in [lo, hi) (hi 0 = unbounded), the
// version of every live key after change at: 0 for untouched base rows.
func (g *gen) stateAt(t int, lo, hi int64, at int64) (versions map[int64]int64, maxKey int64) {
	h := newHistory(g.cfg)
	versions = map[int64]int64{}
	deleted := map[int64]bool{}
	for h.n < at {
		c := h.next()
		if c.table != t || c.id < lo || (hi > 0 && c.id >= hi) {
			continue
		}
		if c.op == model.OpDelete {
			deleted[c.id] = true
			delete(versions, c.id)
		} else {
			versions[c.id] = h.n
		}
	}
	for id := range deleted {
		versions[id] = -1
	}
	return versions, h.maxKey[t]
}
