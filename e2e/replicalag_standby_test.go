package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/internal/testsupport"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// standby is a physical streaming replica of a pgtest server
// (pg_basebackup -R), run by the postgres user.
type standby struct {
	cmd  *exec.Cmd
	done chan struct{}
	port int
}

func startStandby(t *testing.T, primary *pgtest.Server) *standby {
	t.Helper()
	dir, err := os.MkdirTemp("", "ferry-standby-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	data := filepath.Join(dir, "data")
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s", primary.Port, pgtest.Password)
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgtest.BinDir, "pg_basebackup"),
		"-d", conn, "-D", data, "-R", "-X", "stream", "-c", "fast").CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v: %s", err, out)
	}
	port, err := testsupport.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &standby{port: port, done: make(chan struct{})}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	// Run as the postgres user directly (not through runuser), so the
	// test's signal reaches the server.
	s.cmd = exec.Command(filepath.Join(pgtest.BinDir, "postgres"),
		"-D", data, "-p", strconv.Itoa(port), "-k", dir, "-h", "127.0.0.1", "-c", "fsync=off")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	s.cmd.Stderr, _ = os.Create(filepath.Join(dir, "log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }() //nolint:errcheck // stopped by the test
	t.Cleanup(s.stop)
	return s
}

// stop ends the standby at once; its walsender on the primary goes too.
func (s *standby) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // already gone is fine
	<-s.done
}

func (s *standby) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	url := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", pgtest.Password, s.port)
	for {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			t.Cleanup(func() { c.Close(context.Background()) })
			return c
		}
		select {
		case <-s.done:
			t.Fatalf("the standby ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestMaxReplicaLagDefaultQueryWithAStandby: a PostgreSQL source with a
// physical standby whose replay is paused behind it: with no
// --replica-lag-query, the copy backs off on the standby's replay_lag
// (pg_stat_replication on the primary) and resumes once the standby is
// gone (its walsender with it), copying every row.
//
// PostgreSQL 15 does not grow replay_lag while replay is paused: it keeps
// the last measured value (tens of milliseconds) until the standby
// replays again, so the threshold here is 1ms.
func TestMaxReplicaLagDefaultQueryWithAStandby(t *testing.T) {
	primary := pgtest.Start(t)
	src, dst := primary.CreateDatabase(t, "stbsrc"), primary.CreateDatabase(t, "stbdst")
	sb := startStandby(t, primary)
	sbConn := sb.connect(t)
	if _, err := sbConn.Exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	const rows = 2000
	primary.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 2000) g`)
	ctx := context.Background()
	admin := primary.Connect(t, "postgres")
	for {
		var lagging bool
		if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE replay_lag > interval '1 millisecond' AND replay_lsn < sent_lsn)`).Scan(&lagging); err != nil {
			t.Fatal(err)
		}
		if lagging {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Log("the standby lags; starting ferry")
	bg := startFerry(t, "sync", primary.URL(src), primary.URL(dst), "--name", "stblag", "--state-dir", t.TempDir(), "--mode", "snapshot",
		"--batch-rows", "100", "--max-replica-lag", "1ms", "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "backing off: the source's replicas lag past --max-replica-lag; table reads pause until they catch up", time.Minute) {
		t.Fatalf("ferry did not back off on the standby's replay_lag:\n%s", tail(bg.stderr.String(), 40))
	}
	t.Log("ferry backs off; stopping the standby")
	sb.stop()
	t.Log("standby stopped")
	if code := bg.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, tail(bg.stderr.String(), 40))
	}
	var n int
	if err := primary.Connect(t, dst).QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != rows {
		t.Fatalf("the destination has %d rows (%v), want %d", n, err, rows)
	}
}
