package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

func TestSharedServerDatabasesAndRoles(t *testing.T) {
	s := Shared(t)
	db := s.CreateDatabase(t, t.Name())
	s.Exec(t, db, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)`)
	role := s.CreateUser(t, "reader", "pw1", "REPLICATION")
	s.Exec(t, db, `GRANT SELECT ON t TO `+role)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.UserURL(role, "pw1", db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var level string
	if err := conn.QueryRow(ctx, `SELECT count(*), current_setting('wal_level') FROM t`).Scan(&n, &level); err != nil {
		t.Fatal(err)
	}
	if n != 2 || level != "logical" {
		t.Fatalf("count %d, wal_level %s", n, level)
	}
	if _, err := pgx.Connect(ctx, s.UserURL(role, "wrong", db)); err == nil {
		t.Fatal("a wrong password was accepted over TCP")
	}
	if Shared(t) != s {
		t.Fatal("Shared started a second server")
	}
}

func TestStartWithOptionsAndRestart(t *testing.T) {
	s := Start(t, WALLevel("replica"))
	conn := s.Connect(t, "postgres")
	var level string
	if err := conn.QueryRow(context.Background(), `SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "replica" {
		t.Fatalf("wal_level = %s", level)
	}
	s.Exec(t, "postgres", `CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)`)
	port := s.Port
	s.Restart(t, "fast")
	if s.Port != port {
		t.Fatalf("port changed from %d to %d", port, s.Port)
	}
	c2 := s.Connect(t, "postgres")
	var x int
	if err := c2.QueryRow(context.Background(), `SELECT x FROM kept`).Scan(&x); err != nil || x != 7 {
		t.Fatalf("after restart: %v %d", err, x)
	}
	s.Down(t, "immediate")
	s.Up(t)
	if err := s.Connect(t, "postgres").QueryRow(context.Background(), `SELECT x FROM kept`).Scan(&x); err != nil || x != 7 {
		t.Fatalf("after an immediate stop: %v %d", err, x)
	}
	dir := s.Dir
	s.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left behind", dir)
	}
}
