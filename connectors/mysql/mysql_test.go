package mysql

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// TestServerOnThisMachine: the test server at 127.0.0.1, and by the name
// localhost, is on this machine (ferry sync then leaves it cores,
// internal/cputune).
func TestServerOnThisMachine(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := newDB(t, srv, "local")
	u := srv.URL(db)
	for _, raw := range []string{u, strings.Replace(u, "127.0.0.1", "localhost", 1)} {
		if !openConn(t, raw).ServerOnThisMachine() {
			t.Errorf("%s: the server is taken as elsewhere", raw)
		}
	}
}
