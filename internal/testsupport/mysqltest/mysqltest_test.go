package mysqltest_test

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mysqltest.StopShared()
	os.Exit(code)
}

func variable(t *testing.T, s *mysqltest.Server, name string) string {
	t.Helper()
	var v string
	if err := s.Connect(t, "").QueryRow("SELECT @@" + name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSharedServerHasRowBinlog(t *testing.T) {
	s := mysqltest.Shared(t)
	if s.Port == 3306 {
		t.Fatal("the shared server uses the machine's port 3306")
	}
	if got := variable(t, s, "log_bin") + "/" + variable(t, s, "binlog_format") + "/" + variable(t, s, "binlog_row_image"); got != "1/ROW/FULL" {
		t.Fatalf("log_bin/binlog_format/binlog_row_image = %s", got)
	}
	if again := mysqltest.Shared(t); again != s {
		t.Fatal("Shared started a second server")
	}
	if !strings.HasPrefix(s.URL("shop"), "mysql://root@127.0.0.1:") || !strings.HasSuffix(s.URL("shop"), "/shop") {
		t.Fatalf("URL: %s", s.URL("shop"))
	}
}

func TestOptionsAndRestart(t *testing.T) {
	s := mysqltest.Start(t, mysqltest.WithBinlogFormat("STATEMENT"), mysqltest.WithRowImage("MINIMAL"))
	if f, img := variable(t, s, "binlog_format"), variable(t, s, "binlog_row_image"); f != "STATEMENT" || img != "MINIMAL" {
		t.Fatalf("binlog_format %s, binlog_row_image %s", f, img)
	}
	kept := s.CreateDatabase(t, "kept")
	if !strings.HasPrefix(kept, "kept_") {
		t.Fatalf("CreateDatabase(kept) named it %q", kept)
	}
	s.Exec(t, "CREATE TABLE `"+kept+"`.t (id int primary key)", "INSERT INTO `"+kept+"`.t VALUES (1)")
	port := s.Port
	for _, mode := range []string{"fast", "immediate"} {
		s.Restart(t, mode)
		if s.Port != port {
			t.Fatalf("restart (%s) moved the port from %d to %d", mode, port, s.Port)
		}
		var n int
		if err := s.Connect(t, kept).QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
			t.Fatalf("after restart (%s): %d rows, %v", mode, n, err)
		}
	}
	reader := s.CreateUser(t, "reader", "s3cret", "SELECT ON `"+kept+"`.*")
	as, err := sql.Open("mysql", fmt.Sprintf("%s:s3cret@tcp(127.0.0.1:%d)/%s", reader, s.Port, kept))
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	var n int
	if err := as.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("as %s: %d rows, %v", reader, n, err)
	}

	var gone string
	t.Run("database", func(t *testing.T) { gone = s.CreateDatabase(t, "gone") })
	if err := s.Connect(t, "").QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", gone).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s after its test ended: %d, %v", gone, n, err)
	}

	off := mysqltest.Start(t, mysqltest.WithoutBinlog())
	if v := variable(t, off, "log_bin"); v != "0" {
		t.Fatalf("log_bin = %s with WithoutBinlog", v)
	}
}
