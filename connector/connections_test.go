package connector_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

func TestConnectionsPrecedenceAndErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "connections.yaml")
	if err := os.WriteFile(file, []byte("src: postgres://h/from-file\nDST: null://\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"FERRY_CONNECTION_SRC=postgres://h/from-env", "FERRY_CONNECTION_ARCHIVE=null://", "PATH=/bin"}
	c, err := connector.LoadConnections(file, env, []string{"archive=postgres://h/from-flag"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"src": "postgres://h/from-env", "dst": "null://", "archive": "postgres://h/from-flag", "SRC": "postgres://h/from-env"} {
		if got, err := c.Resolve(name, "source"); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if got := strings.Join(c.Names(), ","); got != "archive,dst,src" {
		t.Errorf("names %s", got)
	}
	_, err = c.Resolve("nosuch", "destination")
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), `destination connection "nosuch" is not defined (defined: archive, dst, src)`) {
		t.Errorf("unknown name: %v", err)
	}

	for _, bad := range []struct {
		flags []string
		env   []string
		want  string
	}{
		{flags: []string{"src"}, want: "has no '='"},
		{flags: []string{"Bad Name=null://"}, want: "invalid connection name"},
		{flags: []string{"src="}, want: "has no URL"},
		{flags: []string{"src=nosuch://x"}, want: "unknown scheme"},
		{env: []string{"FERRY_CONNECTION_=null://"}, want: "invalid connection name"},
	} {
		_, err := connector.LoadConnections("", bad.env, bad.flags)
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: %v, want a configuration error saying %q", bad.flags, bad.env, err, bad.want)
		}
	}
	if _, err := connector.LoadConnections(filepath.Join(t.TempDir(), "missing.yaml"), nil, nil); !errs.IsConfigError(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestConnectionErrorsHideThePassword(t *testing.T) {
	_, err := connector.LoadConnections("", nil, []string{"src=nosuch://user:hunter2-secret@host/db"})
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Fatalf("error %v shows the password", err)
	}
}
