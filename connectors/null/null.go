// Package null is a destination that discards everything it is given and
// counts it: the engine's own speed, with no database in the way.
package null

import (
	"context"
	"net/url"
	"sync/atomic"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

func init() {
	connector.Register(connector.Registration{
		Scheme:    "null",
		Summary:   "discards rows and changes, counting them",
		Example:   "null://",
		Open:      func(context.Context, *url.URL) (connector.Connector, error) { return &Destination{}, nil },
		Prototype: (*Destination)(nil),
	})
}

// Destination discards and counts.
type Destination struct {
	rows, changes atomic.Int64
}

var (
	_ connector.ChangeApplier = (*Destination)(nil)
	_ connector.Counter       = (*Destination)(nil)
)

func (d *Destination) Close() error                                            { return nil }
func (d *Destination) CreateTables(context.Context, []*model.Table) error      { return nil }
func (d *Destination) OpenWriter(context.Context) (connector.RowWriter, error) { return d, nil }
func (d *Destination) OpenApplier(context.Context) (connector.ChangeWriter, error) {
	return (*applier)(d), nil
}

// WriteRows counts the rows.
func (d *Destination) WriteRows(_ context.Context, b *model.RowBatch) error {
	d.rows.Add(int64(len(b.Rows)))
	return nil
}

// Counts returns the rows and changes received.
func (d *Destination) Counts() (rows, changes int64) { return d.rows.Load(), d.changes.Load() }

type applier Destination

func (a *applier) ApplyChanges(_ context.Context, b *model.ApplyBatch) error {
	a.changes.Add(int64(b.Len()))
	return nil
}
func (a *applier) Close() error { return nil }
