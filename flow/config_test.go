package flow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadFileRefusesBadFiles: each malformed flow file is an error that
// names the file and says what is wrong.
func TestLoadFileRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body, want string
	}{
		{"empty", "", "is empty: it needs at least a source and a destination"},
		{"only a comment", "# nothing\n", "is empty"},
		{"typo", "source: fake://\nparalel: 3\n", "field paralel not found"},
		{"wrong type", "source: fake://\nparallel: lots\n", "cannot unmarshal"},
		{"syntax", "source: [unclosed\n", "did not find expected"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yaml")
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming %s and saying %q", c.name, err, path, c.want)
		}
	}
}
