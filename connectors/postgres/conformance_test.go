package postgres_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// conformanceSource makes the suite's source table in a new database of srv
// and records that database in *db.
func conformanceSource(srv *pgtest.Server, db *string) func(t *testing.T, n int) (connector.Source, model.Namespace) {
	return func(t *testing.T, n int) (connector.Source, model.Namespace) {
		*db = srv.CreateDatabase(t, "conf")
		srv.Exec(t, *db, "CREATE TABLE items (id bigint PRIMARY KEY, v text)")
		srv.Exec(t, *db, fmt.Sprintf("INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, %d) i", n))
		srv.Exec(t, *db, "ANALYZE items")
		return open(t, srv.URL(*db)), model.Namespace{Schema: "public", Table: "items"}
	}
}

func TestConformanceSource(t *testing.T) {
	srv := pgtest.Shared(t)
	var db string // the database Open made last, for Exec
	conformance.Source(t, conformance.SourceHarness{
		Open: conformanceSource(srv, &db),
		Exec: func(t *testing.T, stmt string) { srv.Exec(t, db, stmt) },
		// A role that may read the table but lacks REPLICATION.
		OpenWithoutCDC: func(t *testing.T) connector.Source {
			role := srv.CreateUser(t, "conf_norepl", "pw")
			srv.Exec(t, db, fmt.Sprintf("GRANT SELECT ON items TO %s", role))
			return open(t, srv.UserURL(role, "pw", db))
		},
	})
}

func TestConformanceDestination(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "conf")
	var srcDB string
	conformance.Destination(t, conformance.DestinationHarness{
		Schema:     "public",
		Open:       func(t *testing.T) connector.Destination { return open(t, srv.URL(db)) },
		OpenSource: conformanceSource(srv, &srcDB),
		CreateUnique: func(t *testing.T, ns model.Namespace) {
			srv.Exec(t, db, "CREATE TABLE "+pgx.Identifier{ns.Schema, ns.Table}.Sanitize()+" (id bigint PRIMARY KEY, v text UNIQUE)")
		},
	})
}
