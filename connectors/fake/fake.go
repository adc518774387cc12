package fake

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "fake",
		Summary:   "deterministic generator with CDC, to measure and test the engine",
		Example:   "fake://?tables=3&rows=100000&changes_per_sec=500",
		Open:      func(_ context.Context, u *url.URL) (connector.Connector, error) { return Open(u) },
		Prototype: (*Source)(nil),
	})
}

// Source is a fake source. With cdc=false in its URL it is a plain Source
// (see NoCDC).
type Source struct {
	cfg   Config
	gen   *gen
	acked atomic.Int64
}

// NoCDC is the fake source without change data capture.
type NoCDC struct{ s *Source }

var (
	_ connector.ChangeSource = (*Source)(nil)
	_ connector.Source       = NoCDC{}
)

// Open opens a fake source from its URL.
func Open(u *url.URL) (connector.Connector, error) {
	cfg, err := ParseConfig(u)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, gen: newGen(cfg)}
	if !cfg.CDC {
		return NoCDC{s}, nil
	}
	return s, nil
}

func (s *Source) Close() error { return nil }

// Tables lists fake.t1 ... fake.tN.
func (s *Source) Tables(ctx context.Context) ([]*model.Table, error) {
	out := make([]*model.Table, s.cfg.Tables)
	for i := range out {
		out[i] = &model.Table{
			Namespace: tableName(i), Columns: append([]model.Column(nil), columns...),
			PrimaryKey: []string{"id"}, EstimatedRows: s.cfg.Rows, EstimatedBytes: s.cfg.Rows * s.gen.rowBytes(),
		}
	}
	return out, nil
}

func tableIndex(ns model.Namespace) (int, error) {
	if ns.Schema != "fake" || len(ns.Table) < 2 || ns.Table[0] != 't' {
		return 0, fmt.Errorf("fake has no table %s", ns)
	}
	i, err := strconv.Atoi(ns.Table[1:])
	if err != nil || i < 1 {
		return 0, fmt.Errorf("fake has no table %s", ns)
	}
	return i - 1, nil
}

// Plan splits each table into key ranges of about PartitionRows rows. T0 is
// position 0: the copy reads the state at T0 (or, with snapshot=head, the
// state after every change, which CDC then converges from T0).
func (s *Source) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	return connector.CollectPlan(ctx, s.PlanStream, tables, opts)
}

// PlanStream is Plan handing out each partition as it is cut.
func (s *Source) PlanStream(ctx context.Context, tables []*model.Table, opts connector.PlanOptions, emit func(model.Partition) error) (*model.Plan, error) {
	per := opts.PartitionRows
	if per <= 0 {
		per = 100_000
	}
	p := &model.Plan{Tables: tables, SnapshotConsistent: s.cfg.Snapshot == "t0", CreatedAt: time.Now().UTC()}
	if opts.CDC {
		if !s.cfg.CDC {
			return nil, errs.BadConfig("this fake source has no change data capture (cdc=false)", "use --mode snapshot")
		}
		p.T0 = "0"
	}
	for _, t := range tables {
		if _, err := tableIndex(t.Namespace); err != nil {
			return nil, err
		}
	}
	for _, t := range tables {
		per := opts.RowsFor(t.Namespace, per)
		n := max((s.cfg.Rows+per-1)/per, 1)
		for i := int64(0); i < n; i++ {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			part := model.Partition{ID: fmt.Sprintf("%s/%04d", t.Namespace, i), Table: t.Namespace, Index: int(i),
				EstimatedRows: min(per, s.cfg.Rows-i*per)}
			part.EstimatedBytes = part.EstimatedRows * s.gen.rowBytes()
			if i > 0 {
				part.Lower = strconv.FormatInt(1+i*per, 10)
			}
			if i < n-1 {
				part.Upper = strconv.FormatInt(1+(i+1)*per, 10)
			}
			if err := emit(part); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func parseBound(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// ReadPartition emits the partition's rows in key order after the cursor.
func (s *Source) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	ti, err := tableIndex(t.Namespace)
	if err != nil {
		return err
	}
	lo, err := parseBound(p.Lower, 1)
	if err != nil {
		return fmt.Errorf("partition %s: bad lower bound %q", p.ID, p.Lower)
	}
	hi, err := parseBound(p.Upper, 0)
	if err != nil {
		return fmt.Errorf("partition %s: bad upper bound %q", p.ID, p.Upper)
	}
	if from != "" {
		c, err := strconv.ParseInt(string(from), 10, 64)
		if err != nil {
			return fmt.Errorf("partition %s: bad cursor %q", p.ID, from)
		}
		lo = c + 1
	}
	// What the copy sees: the base rows, or the state after every change.
	var versions map[int64]int64
	last := s.cfg.Rows
	if s.cfg.Snapshot == "head" && s.cfg.Changes > 0 {
		versions, last = s.gen.stateAt(ti, lo, hi, s.cfg.Changes)
	}
	if hi == 0 || hi > last+1 {
		hi = last + 1
	}
	const batchRows = 1000
	var slab model.Slab
	batch := &model.RowBatch{Rows: make([]model.Row, 0, batchRows)}
	lastID := int64(0)
	for id := lo; id < hi; id++ {
		version := int64(0)
		if versions != nil {
			v, touched := versions[id]
			if touched && v < 0 {
				continue // deleted
			}
			if !touched && id > s.cfg.Rows {
				continue
			}
			version = v
		}
		batch.Rows = append(batch.Rows, s.gen.row(&slab, ti, id, version))
		batch.Bytes += s.gen.rowBytes()
		lastID = id
		if len(batch.Rows) == batchRows {
			batch.Cursor = model.Cursor(strconv.FormatInt(lastID, 10))
			if err := s.pace(ctx, len(batch.Rows)); err != nil {
				return err
			}
			if err := emit(batch); err != nil {
				return err
			}
			batch = &model.RowBatch{Rows: make([]model.Row, 0, batchRows)}
		}
	}
	if len(batch.Rows) > 0 {
		batch.Cursor = model.Cursor(strconv.FormatInt(lastID, 10))
		if err := s.pace(ctx, len(batch.Rows)); err != nil {
			return err
		}
		return emit(batch)
	}
	return nil
}

// pace waits as long as rows take at rows_per_sec, or not at all.
func (s *Source) pace(ctx context.Context, rows int) error {
	if s.cfg.RowsPerSec <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(float64(rows) / s.cfg.RowsPerSec * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StreamChanges emits changes after position from, paced by changes_per_sec.
// After the last change it emits an empty batch at the head every 200ms.
func (s *Source) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, _ connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	start, err := strconv.ParseInt(string(from), 10, 64)
	if err != nil || start < 0 {
		return fmt.Errorf("fake: bad position %q", from)
	}
	h := newHistory(s.cfg)
	for h.n < start {
		h.next()
	}
	began := time.Now()
	const maxBatch = 500
	var slab model.Slab
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// How far the stream may go now.
		limit := int64(-1)
		if s.cfg.Changes > 0 {
			limit = s.cfg.Changes
		}
		if r := s.cfg.ChangesPerSec; r > 0 {
			due := start + int64(time.Since(began).Seconds()*r)
			if limit < 0 || due < limit {
				limit = due
			}
		} else if limit < 0 {
			limit = h.n // no changes at all
		}
		if h.n >= limit {
			wait := 200 * time.Millisecond
			if r := s.cfg.ChangesPerSec; r > 0 && (s.cfg.Changes == 0 || h.n < s.cfg.Changes) {
				wait = min(wait, time.Duration(float64(time.Second)/r)+time.Millisecond)
			}
			if err := emit(ctx, &model.ChangeBatch{Position: model.Position(strconv.FormatInt(h.n, 10))}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		b := &model.ChangeBatch{Changes: make([]model.Change, 0, min(maxBatch, limit-h.n))}
		for h.n < limit && len(b.Changes) < maxBatch {
			c := h.next()
			ch := model.Change{Op: c.op, Table: tableName(c.table)}
			if c.op == model.OpDelete {
				ch.Key = model.Row{c.id}
			} else {
				ch.Row = s.gen.row(&slab, c.table, c.id, h.n)
			}
			b.Changes = append(b.Changes, ch)
		}
		b.Position = model.Position(strconv.FormatInt(h.n, 10))
		b.CommitTime = time.Now()
		if err := emit(ctx, b); err != nil {
			return err
		}
	}
}

// Ack records the acknowledged position.
func (s *Source) Ack(ctx context.Context, pos model.Position) error {
	n, err := strconv.ParseInt(string(pos), 10, 64)
	if err != nil {
		return fmt.Errorf("fake: bad position %q", pos)
	}
	s.acked.Store(n)
	return nil
}

// HeadPosition is the number of changes the fake database has: all of them
// when changes= is set, otherwise what is due since the source was opened.
func (s *Source) HeadPosition(ctx context.Context) (model.Position, error) {
	return model.Position(strconv.FormatInt(s.cfg.Changes, 10)), nil
}

// ComparePositions compares two change counts.
func (s *Source) ComparePositions(a, b model.Position) (int, error) {
	x, err := strconv.ParseInt(string(a), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fake: bad position %q", a)
	}
	y, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fake: bad position %q", b)
	}
	switch {
	case x < y:
		return -1, nil
	case x > y:
		return 1, nil
	}
	return 0, nil
}

func (n NoCDC) Close() error { return nil }
func (n NoCDC) Tables(ctx context.Context) ([]*model.Table, error) {
	return n.s.Tables(ctx)
}
func (n NoCDC) Plan(ctx context.Context, t []*model.Table, o connector.PlanOptions) (*model.Plan, error) {
	return n.s.Plan(ctx, t, o)
}

// PlanStream is the fake source's PlanStream.
func (n NoCDC) PlanStream(ctx context.Context, t []*model.Table, o connector.PlanOptions, emit func(model.Partition) error) (*model.Plan, error) {
	return n.s.PlanStream(ctx, t, o, emit)
}
func (n NoCDC) ReadPartition(ctx context.Context, t *model.Table, p model.Partition, from model.Cursor, emit func(*model.RowBatch) error) error {
	return n.s.ReadPartition(ctx, t, p, from, emit)
}

// Expected is the exact content every table of the fake source at rawURL has
// after change number at: by table, key to row. Tests compare a destination
// with it.
func Expected(rawURL string, at int64) (map[model.Namespace]map[int64]model.Row, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(u)
	if err != nil {
		return nil, err
	}
	g := newGen(cfg)
	var slab model.Slab
	out := map[model.Namespace]map[int64]model.Row{}
	for t := 0; t < cfg.Tables; t++ {
		versions, maxKey := g.stateAt(t, 1, 0, at)
		rows := map[int64]model.Row{}
		for id := int64(1); id <= maxKey; id++ {
			v, touched := versions[id]
			if touched && v < 0 || !touched && id > cfg.Rows {
				continue
			}
			rows[id] = g.row(&slab, t, id, v)
		}
		out[tableName(t)] = rows
	}
	return out, nil
}

// TableSchema is the schema every fake table has, under the name fake.t1.
func TableSchema() *model.Table {
	return &model.Table{Namespace: tableName(0), Columns: append([]model.Column(nil), columns...), PrimaryKey: []string{"id"}}
}
