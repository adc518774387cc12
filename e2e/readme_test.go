package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's first command (the demo: a fake source into SQLite with the
// dashboard, then verify) works as written, with the built binary for
// `go run ./cmd/ferry`, a free port for the dashboard, a short linger and a
// private file.
func TestREADMEDemoCommand(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```sh\n")
	if !ok {
		t.Fatal("README has no sh block")
	}
	demo, _, _ := strings.Cut(rest, "\n```")
	if !strings.Contains(demo, "--ui 127.0.0.1:8080") || !strings.Contains(demo, "verify") {
		t.Fatalf("the README's first command no longer runs a flow with the dashboard and verifies it:\n%s", demo)
	}
	db := filepath.Join(t.TempDir(), "demo.db")
	cmd := strings.NewReplacer("go run ./cmd/ferry", ferryBin, "127.0.0.1:8080", "127.0.0.1:0",
		"--ui-linger 2m", "--ui-linger 1s", "/tmp/ferry-demo.db", db).Replace(demo)
	c := exec.Command("bash", "-c", cmd)
	c.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all 3 table(s) equal") {
		t.Fatalf("the README's demo command failed (%v):\n%s\n%s", err, cmd, out)
	}
}
