// Package e2e runs the ferry binary the way a user does: as a process, with
// real files and databases, killed and restarted, and checks what a user
// would notice: the rows at the destination, the exit codes, the messages.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/testpki"
	"github.com/ferrydb/ferry/model"
	_ "modernc.org/sqlite"
)

var ferryBin string

// ferryBuildFlags are added to the build of the ferry binary: -tags duckdb
// when the tests themselves are built with it (duckdb_test.go).
var ferryBuildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ferry-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBin = filepath.Join(dir, "ferry")
	build := exec.Command("go", append(append([]string{"build"}, ferryBuildFlags...), "-o", ferryBin, "../cmd/ferry")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	mysqltest.StopShared()
	testpki.RemoveShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished ferry run.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// logLine finds the last JSON log line with the given message.
func (r result) logLine(msg string) map[string]any {
	var found map[string]any
	for _, line := range strings.Split(r.stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			found = m
		}
	}
	return found
}

func ferry(t *testing.T, args ...string) result {
	t.Helper()
	return ferryWithEnv(t, nil, args...)
}

// ferryWithEnv runs ferry with env (KEY=value) added to this process's.
func ferryWithEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ferry %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustFerry runs ferry and fails the test unless it exits 0.
func mustFerry(t *testing.T, args ...string) result {
	t.Helper()
	r := ferry(t, args...)
	if r.code != 0 {
		t.Fatalf("ferry %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// background is a ferry process the test will interrupt.
type background struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
	// exited is closed once the process has been waited for: reading
	// cmd.ProcessState before that races with cmd.Wait.
	exited chan struct{}
}

type syncBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newSyncBuffer() *syncBuffer { b := &syncBuffer{mu: make(chan struct{}, 1)}; return b }
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

func startFerry(t *testing.T, args ...string) *background {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	bg := &background{cmd: cmd, stderr: newSyncBuffer(), done: make(chan error, 1), exited: make(chan struct{})}
	cmd.Stderr = bg.stderr
	cmd.Stdout = bg.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		close(bg.exited)
		bg.done <- err
	}()
	t.Cleanup(func() {
		select {
		case <-bg.exited:
		default:
			cmd.Process.Kill() //nolint:errcheck // best effort at test end
			<-bg.exited
		}
	})
	return bg
}

// waitFor waits until the process logged msg (or exited), up to timeout.
func (b *background) waitFor(t *testing.T, msg string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(b.stderr.String(), `"msg":"`+msg+`"`) {
			return true
		}
		select {
		case <-b.exited:
			return strings.Contains(b.stderr.String(), `"msg":"`+msg+`"`)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// killedAt runs ferry with args held at the faultpoint point, waits until
// it holds there, SIGKILLs it, and clears the point for the runs after.
func killedAt(t *testing.T, point string, args ...string) {
	t.Helper()
	bg := startFerryEnv(t, []string{faultpoint.Env + "=" + point}, args...)
	if !bg.waitFor(t, faultpoint.Message, 2*time.Minute) {
		t.Fatalf("ferry never held at %s:\n%s", point, bg.stderr.String())
	}
	if !bg.kill(t) {
		t.Fatalf("ferry had exited before the kill:\n%s", bg.stderr.String())
	}
	t.Setenv(faultpoint.Env, "")
}

// kill sends SIGKILL and waits for the process to die. It reports whether
// the process was still running (false: it had already finished).
func (b *background) kill(t *testing.T) bool {
	t.Helper()
	select {
	case <-b.done:
		return false
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
	return true
}

func (b *background) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("ferry did not exit within 60s of %v:\n%s", sig, b.stderr.String())
	}
	return b.cmd.ProcessState.ExitCode()
}

// openSQLite opens a SQLite file for direct reads.
func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// compareSQLiteWithFake reads every row of each fake table from a SQLite file
// and compares it, value by value, with the fake source's exact state after
// change number at. It fails on a missing, extra, duplicated or different row.
func compareSQLiteWithFake(t *testing.T, dbPath, fakeURL string, at int64) {
	t.Helper()
	want, err := fake.Expected(fakeURL, at)
	if err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, dbPath)
	schema := fake.TableSchema()
	for ns, rows := range want {
		var names []string
		for _, c := range schema.Columns {
			names = append(names, `"`+c.Name+`"`)
		}
		q := fmt.Sprintf(`SELECT %s FROM "%s"`, strings.Join(names, ","), ns.Table)
		res, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		seen := map[int64]bool{}
		for res.Next() {
			vals := make([]any, len(schema.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := res.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			id, err := model.Coerce(schema.Columns[0].Type, vals[0])
			if err != nil {
				t.Fatal(err)
			}
			key := id.(int64)
			if seen[key] {
				t.Fatalf("%s: key %d appears twice", ns, key)
			}
			seen[key] = true
			exp, ok := rows[key]
			if !ok {
				t.Fatalf("%s: key %d is at the destination but not at the source", ns, key)
			}
			for i, c := range schema.Columns {
				got, err := model.Coerce(c.Type, vals[i])
				if err != nil {
					t.Fatalf("%s key %d column %s: %v", ns, key, c.Name, err)
				}
				a, _ := model.AppendCanonical(nil, c.Type, got)
				b, _ := model.AppendCanonical(nil, c.Type, exp[i])
				if !bytes.Equal(a, b) {
					t.Fatalf("%s key %d column %s: destination has %#v, source has %#v", ns, key, c.Name, got, exp[i])
				}
			}
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		res.Close()
		if len(seen) != len(rows) {
			var missing []int64
			for k := range rows {
				if !seen[k] && len(missing) < 10 {
					missing = append(missing, k)
				}
			}
			t.Fatalf("%s: destination has %d rows, source %d; missing keys include %v", ns, len(seen), len(rows), missing)
		}
	}
}

// readLines reads a text file's lines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func openSQLiteRW(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// compareJSONLWithFake reads a table's JSON Lines file and compares every
// row, value by value, with the fake source's state at T0.
func compareJSONLWithFake(t *testing.T, path, fakeURL string, ns model.Namespace) {
	t.Helper()
	want, err := fake.Expected(fakeURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := want[ns]
	schema := fake.TableSchema()
	seen := map[int64]bool{}
	for i, line := range readLines(t, path) {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			t.Fatalf("%s line %d: %v", path, i+1, err)
		}
		got := make(model.Row, len(schema.Columns))
		for j, c := range schema.Columns {
			raw, ok := obj[c.Name]
			if !ok {
				t.Fatalf("%s line %d: no column %s", path, i+1, c.Name)
			}
			var jv any = json.RawMessage(raw)
			if c.Type.Kind != model.KindJSON {
				d := json.NewDecoder(bytes.NewReader(raw))
				d.UseNumber()
				if err := d.Decode(&jv); err != nil {
					t.Fatal(err)
				}
			} else if string(raw) == "null" {
				jv = nil
			}
			v, err := model.FromJSON(c.Type, jv)
			if err != nil {
				t.Fatalf("%s line %d column %s: %v", path, i+1, c.Name, err)
			}
			got[j] = v
		}
		id := got[0].(int64)
		if seen[id] {
			t.Fatalf("%s: key %d twice", path, id)
		}
		seen[id] = true
		exp, ok := rows[id]
		if !ok {
			t.Fatalf("%s: key %d is not at the source", path, id)
		}
		for j, c := range schema.Columns {
			a, _ := model.AppendCanonical(nil, c.Type, got[j])
			b, _ := model.AppendCanonical(nil, c.Type, exp[j])
			if !bytes.Equal(a, b) {
				t.Fatalf("%s key %d column %s: file has %#v, source has %#v", path, id, c.Name, got[j], exp[j])
			}
		}
	}
	if len(seen) != len(rows) {
		t.Fatalf("%s has %d rows, the source %d", path, len(seen), len(rows))
	}
}

// hasExited reports whether the process has exited (and been waited for).
func (b *background) hasExited() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}
