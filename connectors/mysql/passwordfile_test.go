package mysql

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

// A MySQL URL takes its password from password_file= (connector.Open
// reads it), so none is written in the URL; a wrong one is refused
// without being shown.
func TestPasswordFromAFile(t *testing.T) {
	s := mysqltest.Shared(t)
	const password = "mysql-from-file-9c1e"
	db := newDB(t, s, "pwfile")
	user := s.CreateUser(t, "pwfile", password, "ALL ON "+db+".*")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-pw-4242\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s.UserURL(user, password, db))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	ctx := context.Background()
	c, err := connector.Open(ctx, u.String()+"?password_file="+url.QueryEscape(good))
	if err != nil {
		t.Fatalf("password_file: %v", err)
	}
	c.Close()
	_, err = connector.Open(ctx, u.String()+"?password_file="+url.QueryEscape(bad))
	if err == nil || strings.Contains(err.Error(), "wrong-pw-4242") {
		t.Fatalf("a wrong password from the file: %v", err)
	}
}
