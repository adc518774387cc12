package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ferry sync @src @dst is the flow `ferry sync URL URL` started: names
// resolve (environment, connections file, flow file's "@src") to the URL
// before the flow is named, so the second run finds the first's state and
// copies nothing again. An unknown name is exit 2 naming the defined ones.
func TestConnectionsByNameNameTheSameFlow(t *testing.T) {
	dir := t.TempDir()
	srcURL := "fake://?tables=2&rows=500"
	dstURL := "sqlite://" + filepath.Join(dir, "dst.db")
	stateDir := filepath.Join(dir, "state")
	sync := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(args, "--state-dir", stateDir, "--mode", "snapshot", "--progress", "none")
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		return errb.String()
	}
	first := sync("sync", srcURL, dstURL)
	if !strings.Contains(first, "rows_copied=1000") {
		t.Fatalf("first run copied other than 1000 rows:\n%s", first)
	}

	t.Setenv("FERRY_CONNECTION_SRC", srcURL)
	connFile := filepath.Join(dir, "connections.yaml")
	if err := os.WriteFile(connFile, []byte("dst: "+dstURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	byName := sync("sync", "@src", "@dst", "--connections-file", connFile)
	flowFile := filepath.Join(dir, "flow.yaml")
	if err := os.WriteFile(flowFile, []byte("source: \"@src\"\ndestination: \"@dst\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_CONNECTIONS_FILE", connFile)
	fromFile := sync("sync", "-f", flowFile)
	for _, out := range []string{byName, fromFile} {
		if !strings.Contains(out, "resuming flow") || !strings.Contains(out, "rows_copied=0") {
			t.Errorf("the run by name did not resume the flow its URLs started:\n%s", out)
		}
	}
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	var flows []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") {
			flows = append(flows, e.Name())
		}
	}
	if len(flows) != 1 {
		t.Errorf("state for %d flows (%v); want one", len(flows), flows)
	}

	var out, errb bytes.Buffer
	code := run([]string{"verify", "@src", "@nosuch"}, &out, &errb)
	if code != ExitUsage || !strings.Contains(errb.String(), `destination connection "nosuch" is not defined (defined: dst, src)`) {
		t.Errorf("unknown name: exit %d\n%s", code, errb.String())
	}
}
