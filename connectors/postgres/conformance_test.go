package postgres_test

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

func TestConformanceSource(t *testing.T) {
	srv := pgtest.Shared(t)
	var db string // the database Open made last, for Exec
	conformance.Source(t, conformance.SourceHarness{
		Open: func(t *testing.T, n int) (connector.Source, model.Namespace) {
			db = srv.CreateDatabase(t, "conf")
			srv.Exec(t, db, "CREATE TABLE items (id bigint PRIMARY KEY, v text)")
			srv.Exec(t, db, fmt.Sprintf("INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, %d) i", n))
			srv.Exec(t, db, "ANALYZE items")
			return open(t, srv.URL(db)), model.Namespace{Schema: "public", Table: "items"}
		},
		Exec: func(t *testing.T, stmt string) { srv.Exec(t, db, stmt) },
	})
}

func TestConformanceDestination(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "conf")
	conformance.Destination(t, conformance.DestinationHarness{
		Schema: "public",
		Open:   func(t *testing.T) connector.Destination { return open(t, srv.URL(db)) },
	})
}
