package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// A PostgreSQL URL without a password takes it from a password file:
// password_file= (ferry's, one password), passfile= or $PGPASSFILE
// (libpq's format, host:port:database:user:password lines, which pgx
// reads), so none is written in the URL.
func TestPasswordFromAFile(t *testing.T) {
	srv := pgtest.Shared(t)
	const password = "from-a-file-7f3a"
	role := srv.CreateUser(t, "pwfile", password)
	db := srv.CreateDatabase(t, "pwfile")
	dir := t.TempDir()
	plain := filepath.Join(dir, "password")
	pgpass := filepath.Join(dir, "pgpass")
	if err := os.WriteFile(plain, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pgpass, []byte(fmt.Sprintf("127.0.0.1:%d:%s:%s:%s\n", srv.Port, db, role, password)), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", role, srv.Port, db)
	ctx := context.Background()
	for _, raw := range []string{base + "&password_file=" + url.QueryEscape(plain), base + "&passfile=" + url.QueryEscape(pgpass), "env"} {
		if raw == "env" {
			t.Setenv("PGPASSFILE", pgpass)
			raw = base
		}
		c, err := connector.Open(ctx, raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		c.Close()
	}
}
