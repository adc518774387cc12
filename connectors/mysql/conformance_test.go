package mysql

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

func TestConformanceSource(t *testing.T) {
	srv := mysqltest.Shared(t)
	var db string // the database Open made last, for OpenWithoutCDC
	conformance.Source(t, conformance.SourceHarness{
		Open: func(t *testing.T, n int) (connector.Source, model.Namespace) {
			db = newDB(t, srv, "conf")
			srv.Exec(t,
				"CREATE TABLE `"+db+"`.items (id bigint PRIMARY KEY, v text)",
				fmt.Sprintf("INSERT INTO `%[1]s`.items SELECT seq, CONCAT('v', seq) FROM `%[1]s`.seq_1_to_%[2]d", db, n),
				"ANALYZE TABLE `"+db+"`.items")
			return openConn(t, srv.URL(db)), model.Namespace{Schema: db, Table: "items"}
		},
		// Statements name the table db.items.
		Exec: func(t *testing.T, stmt string) { srv.Exec(t, stmt) },
		// A user that may read the table but not the binlog.
		OpenWithoutCDC: func(t *testing.T) connector.Source {
			user := srv.CreateUser(t, "conf_norepl", "pw", "SELECT ON `"+db+"`.*")
			t.Cleanup(func() { srv.Exec(t, "DROP USER IF EXISTS '"+user+"'@'%', '"+user+"'@'127.0.0.1'") })
			return openConn(t, srv.UserURL(user, "pw", db))
		},
	})
}

func TestConformanceDestination(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := newDB(t, srv, "conf")
	conformance.Destination(t, conformance.DestinationHarness{
		Schema: db,
		Open:   func(t *testing.T) connector.Destination { return openConn(t, srv.URL(db)) },
	})
}
