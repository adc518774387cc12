package postgres_test

import (
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestServerOnThisMachine: the test server, reached over TCP on 127.0.0.1
// and over its Unix socket, is on this machine (ferry sync then leaves it
// cores, internal/cputune).
func TestServerOnThisMachine(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "local")
	for _, u := range []string{srv.URL(db), srv.AdminURL(db)} {
		if !open(t, u).ServerOnThisMachine() {
			t.Errorf("%s: the server is taken as elsewhere", u)
		}
	}
}
