//go:build !(cgo && duckdb)

package duckdb

import (
	"context"
	"net/url"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

// Unavailable is what this binary has instead of the DuckDB connector.
type Unavailable struct{}

func (*Unavailable) Close() error { return nil }

// ErrNoDuckDB is the refusal of a duckdb:// URL by a binary without the
// connector.
func ErrNoDuckDB() error {
	return errs.BadConfig("this ferry binary was built without cgo or the duckdb build tag and has no DuckDB connector",
		"use the ferry:<version>-duckdb image (docker build --target duckdb) or build with CGO_ENABLED=1 go build -tags duckdb ./cmd/ferry")
}

func init() {
	connector.Register(connector.Registration{
		Scheme:  "duckdb",
		Summary: "DuckDB database file (not in this binary: needs a build with cgo and -tags duckdb)",
		Example: "duckdb:///tmp/ferry.duckdb",
		Open: func(context.Context, *url.URL) (connector.Connector, error) {
			return nil, ErrNoDuckDB()
		},
		Prototype: (*Unavailable)(nil),
	})
}
