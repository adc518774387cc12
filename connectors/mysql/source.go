package mysql

import (
	"sync/atomic"

	"github.com/ferrydb/ferry/connector"
)

// What the source half offers (its files are listed in the package doc).
var (
	_ connector.Source       = (*Conn)(nil)
	_ connector.ChangeSource = (*Conn)(nil)
)

// sourceState is what the source half keeps between calls; one stream's
// state lives in its stream value.
type sourceState struct {
	// batchRows is the BatchRows Plan was given, the page size of the
	// ReadPartition calls that follow on this Conn (0: the default).
	batchRows atomic.Int64
}

// batchSize is the number of rows a snapshot read fetches per query.
func (s *sourceState) batchSize() int {
	if n := s.batchRows.Load(); n > 0 {
		return int(n)
	}
	return defaultBatchRows
}
