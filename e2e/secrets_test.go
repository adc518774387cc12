package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestConnectionsByNameKeepThePasswordOut: a flow whose connections come
// by name (the source from a connections file, its password from a
// password_file; the destination from FERRY_CONNECTION_DST) runs with its
// password in none of what a user or another user of the machine can
// see: the process's command line, its log, the dashboard, /metrics (on
// --ui and on --health-addr), the state directory, the destination's
// checkpoints. The flow is the one `ferry sync URL URL` started: @src
// resumes it.
func TestConnectionsByNameKeepThePasswordOut(t *testing.T) {
	srv := pgtest.Start(t)
	const password = "Pw-kx81-distinctive-f00dcafe"
	role := srv.CreateUser(t, "mover", password, "SUPERUSER", "REPLICATION")
	src, dst := srv.CreateDatabase(t, "secsrc"), srv.CreateDatabase(t, "secdst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 2000) g`)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srcURL := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable&password_file=%s", role, srv.Port, src, url.QueryEscape(pwFile))
	dstURL := srv.UserURL(role, password, dst)
	stateDir := filepath.Join(dir, "state")

	// The flow started with URLs (password_file for the source).
	first := mustFerry(t, "sync", srcURL, dstURL, "--state-dir", stateDir, "--until", "caught-up", "--progress", "none", "--log-format", "json")
	name := fmt.Sprint(first.logLine("flow starting")["flow"])
	if strings.Contains(first.stderr, password) {
		t.Fatalf("the log shows the password:\n%s", first.stderr)
	}
	srv.Exec(t, src, `INSERT INTO items SELECT g, 'y' FROM generate_series(2001, 3000) g`)

	// The same flow by name.
	connFile := filepath.Join(dir, "connections.yaml")
	if err := os.WriteFile(connFile, []byte("src: "+srcURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bg := startFerryEnv(t, []string{"FERRY_CONNECTION_DST=" + dstURL, "FERRY_CONNECTIONS_FILE=" + connFile},
		"sync", "@src", "@dst", "--state-dir", stateDir, "--ui", "127.0.0.1:0", "--health-addr", "127.0.0.1:0",
		"--progress", "log", "--log-format", "json", "--log-level", "debug")
	dash := dashboardURL(t, bg)
	if !bg.waitFor(t, "health and metrics listening", 60*time.Second) {
		t.Fatalf("no --health-addr server:\n%s", bg.stderr.String())
	}
	health := "http://" + logField(t, bg, "health and metrics listening", "address") + "/"
	if !bg.waitFor(t, "resuming flow", 60*time.Second) || !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("@src @dst did not resume the flow its URLs started:\n%s", bg.stderr.String())
	}
	if got := logField(t, bg, "flow starting", "flow"); got != name {
		t.Fatalf("@src @dst runs flow %q; the URLs they stand for ran %q", got, name)
	}
	srv.Exec(t, src, `INSERT INTO items VALUES (3001, 'while streaming')`)
	ctx := context.Background()
	dconn := srv.Connect(t, dst)
	if !waitUntil(ctx, 60*time.Second, func() bool {
		var n int
		return dconn.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n) == nil && n == 3001
	}) {
		t.Fatalf("the destination did not get the rows:\n%s", bg.stderr.String())
	}

	leaks := map[string]string{}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", bg.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	leaks["/proc/PID/cmdline"] = string(cmdline)
	for _, path := range []string{"", "assets/app.js", "api/flow", "api/history", "api/errors", "metrics"} {
		code, body := get(t, dash+path, 8<<20)
		if code != 200 {
			t.Errorf("dashboard GET /%s: %d", path, code)
		}
		leaks["dashboard /"+path] = body
	}
	for _, path := range []string{"metrics", "healthz", "readyz"} {
		code, body := get(t, health+path, 8<<20)
		if code != 200 {
			t.Errorf("--health-addr GET /%s: %d %s", path, code, body)
		}
		leaks["--health-addr /"+path] = body
	}
	if !strings.Contains(leaks["--health-addr /metrics"], "ferry_") {
		t.Errorf("--health-addr /metrics has no ferry metrics:\n%.2000s", leaks["--health-addr /metrics"])
	}
	if code := bg.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM:\n%s", code, bg.stderr.String())
	}
	leaks["stderr"] = bg.stderr.String()
	rows, err := dconn.Query(ctx, `SELECT c::text FROM _ferry.checkpoints c`)
	if err != nil {
		t.Fatal(err)
	}
	var ckpts []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ckpts = append(ckpts, s)
	}
	if rows.Err() != nil || len(ckpts) == 0 {
		t.Fatalf("no checkpoints at the destination: %v", rows.Err())
	}
	leaks["_ferry.checkpoints"] = strings.Join(ckpts, "\n")
	err = filepath.Walk(stateDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		leaks["state file "+path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range leaks {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the password", where)
		}
	}
}

// logField returns a field of the first JSON log line with message msg.
func logField(t *testing.T, bg *background, msg, field string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(bg.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return fmt.Sprint(m[field])
		}
	}
	t.Fatalf("no %q log line:\n%s", msg, bg.stderr.String())
	return ""
}

// TestSlotLeftWithoutAPlanIsMadeAgain: ferry killed (SIGKILL) after the
// source created the flow's replication slot and before the plan was
// saved leaves a slot and no plan. The next run drops that slot, says so,
// makes a new one and copies everything, without --restart; before, it
// refused ("created it but kept no plan ... run with --restart").
func TestSlotLeftWithoutAPlanIsMadeAgain(t *testing.T) {
	srv := pgtest.Start(t)
	src, dst := srv.CreateDatabase(t, "leftsrc"), srv.CreateDatabase(t, "leftdst")
	srv.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 5000) g`)
	stateDir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "killed-at-plan", "--state-dir", stateDir, "--until", "caught-up", "--progress", "none", "--log-format", "json"}
	bg := startFerryEnv(t, []string{faultpoint.Env + "=" + faultpoint.PlanMade}, args...)
	// Only that run holds: the next one must go through.
	if err := os.Unsetenv(faultpoint.Env); err != nil {
		t.Fatal(err)
	}
	if !bg.waitFor(t, faultpoint.Message, 60*time.Second) {
		t.Fatalf("ferry did not reach the point between the slot and the saved plan:\n%s", bg.stderr.String())
	}
	ctx := context.Background()
	sconn := srv.Connect(t, src)
	var slots int
	if err := sconn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'ferry_killed_at_plan%'`).Scan(&slots); err != nil || slots != 1 {
		t.Fatalf("held after the plan: %d slots of the flow (%v); want the one the plan made", slots, err)
	}
	if !bg.kill(t) {
		t.Fatalf("ferry ended before it was killed:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `INSERT INTO items VALUES (5001, 'after the kill')`)

	r := mustFerry(t, args...)
	if !strings.Contains(r.stderr, "dropping replication slot ferry_killed_at_plan") {
		t.Errorf("the run did not say it dropped the slot left without a plan:\n%s", r.stderr)
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 5001 {
		t.Fatalf("destination has %d rows (%v); want 5001", n, err)
	}
}
