package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// ReverseStarter is a destination that can become the source of the way
// back after a cutover (ferry cutover --reverse): at the cutover point it
// records its own position, for a reverse flow to stream from.
type ReverseStarter interface {
	// CheckReverse tells whether this database can be a change source
	// (PostgreSQL: wal_level = logical, the privilege to replicate), with
	// an errs.ConfigError saying how to fix it when not.
	CheckReverse(ctx context.Context) error
	// StartReverse records this database's position now for the reverse
	// flow named flow, creating what its change stream needs for tables
	// (PostgreSQL: the flow's publication and replication slot), and
	// returns that position. A start recorded earlier for the same flow
	// (a retried cutover) is kept and returned: the application may have
	// written since.
	StartReverse(ctx context.Context, flow string, tables []model.Namespace) (model.Position, error)
}
