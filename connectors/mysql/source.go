package mysql

import (
	"github.com/ferrydb/ferry/connector"
)

// What the source half offers (its files are listed in the package doc). It
// keeps nothing between calls: the plan and the partition say what a read
// needs, and one stream's state lives in its stream value.
var (
	_ connector.Source       = (*Conn)(nil)
	_ connector.ChangeSource = (*Conn)(nil)
)
