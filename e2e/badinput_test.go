package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: each mistake gets exit code 2, a message that says what is
// wrong and how to fix it, no password in the output, and nothing written.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "never.db")
	existing := filepath.Join(dir, "src.db")
	mustFerry(t, "sync", "fake://?tables=1&rows=10", "sqlite://"+existing, "--mode", "snapshot", "--state-dir", dir)
	cases := []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"unknown scheme", []string{"sync", "bogus://x", "sqlite://" + dst}, []string{`unknown scheme "bogus"`, "known schemes:", "sqlite"}},
		{"malformed URL with password", []string{"sync", "postgres://app:hunter2@db:54x32/shop", "sqlite://" + dst}, []string{"malformed URL", "xxxxx"}},
		{"missing sqlite file", []string{"sync", "sqlite://" + filepath.Join(dir, "missing.db"), "sqlite://" + dst}, []string{"does not exist"}},
		{"filter matches nothing", []string{"sync", "fake://?tables=2", "sqlite://" + dst, "--mode", "snapshot", "--tables", "orders*"}, []string{`--tables "orders*" matches no table`, "fake.t1"}},
		{"bad filter pattern", []string{"sync", "fake://", "sqlite://" + dst, "--tables", "shop.["}, []string{"syntax error in pattern"}},
		{"CDC from a source without it", []string{"sync", "sqlite://" + existing, "sqlite://" + dst, "--mode", "full"}, []string{"needs change data capture", "--mode snapshot"}},
		{"CDC into files", []string{"sync", "fake://", "file://" + filepath.Join(dir, "out"), "--mode", "cdc"}, []string{"cannot", "--mode snapshot"}},
		{"null as source", []string{"sync", "null://", "sqlite://" + dst}, []string{"cannot be a source"}},
		{"unknown mode", []string{"sync", "fake://", "sqlite://" + dst, "--mode", "sometimes"}, []string{"unknown mode"}},
		{"unknown flag", []string{"sync", "fake://", "sqlite://" + dst, "--paralel", "3"}, []string{"unknown flag"}},
		{"one URL only", []string{"sync", "fake://"}, []string{"SOURCE and DESTINATION"}},
		{"unknown fake setting", []string{"sync", "fake://?colour=red", "sqlite://" + dst}, []string{`unknown fake setting "colour"`, "known settings"}},
		{"rename of a table not selected", []string{"sync", "fake://", "sqlite://" + dst, "--mode", "snapshot", "--rename", "fake.t9=x.y"}, []string{"--rename names tables the source does not have: fake.t9"}},
		{"two tables into one", []string{"sync", "fake://?tables=2", "sqlite://" + dst, "--mode", "snapshot", "--rename", "fake.t1=x.t", "--rename", "fake.t2=x.t"}, []string{"would both be written"}},
		{"bad until", []string{"sync", "fake://", "sqlite://" + dst, "--until", "forever"}, []string{"unknown --until"}},
		{"verify against null", []string{"verify", "fake://", "null://"}, []string{"cannot be read back"}},
		{"schema-less destination collision", []string{"sync", "fake://?tables=2", "sqlite://" + dst, "--mode", "snapshot", "--rename", "fake.t1=a.t", "--rename", "fake.t2=b.t"}, []string{`both map to SQLite table "t"`}},
		{"missing flow file", []string{"sync", "-f", filepath.Join(dir, "nope.yaml")}, []string{"flow file", "no such file"}},
		{"unknown file format", []string{"sync", "fake://", "file://" + filepath.Join(dir, "out") + "?format=xml", "--mode", "snapshot"}, []string{"xml", "jsonl"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if args[0] == "sync" {
				args = append(args, "--state-dir", dir)
			}
			r := ferry(t, args...)
			if r.code != 2 {
				t.Fatalf("want exit code 2, got %s", r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr+r.stdout, "hunter2") {
				t.Errorf("the password is printed:\n%s", r)
			}
			if _, err := os.Stat(dst); err == nil {
				t.Fatalf("the destination %s was created", dst)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
				t.Fatalf("the destination directory was created")
			}
		})
	}
	// A flow whose configuration failed leaves no state behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") && e.Name() != "src.db" && !strings.HasPrefix(e.Name(), "fake-to-sqlite") {
			t.Errorf("state left behind by a failed run: %s", e.Name())
		}
	}
}

// TestFlowAlreadyRunning: a second process on the same flow is refused.
func TestFlowAlreadyRunning(t *testing.T) {
	dir := t.TempDir()
	args := []string{"sync", "fake://?rows=10&changes_per_sec=10", "null://", "--state-dir", dir, "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", 30e9) {
		t.Fatalf("first run did not start:\n%s", bg.stderr.String())
	}
	r := ferry(t, args...)
	if r.code != 2 || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second run of a running flow: %s", r)
	}
	bg.kill(t)
}
