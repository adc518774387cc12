package file

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url, dir, format string
	}{
		{"file:///tmp/export", "/tmp/export", formatJSONL},
		{"file:///tmp/export/?format=csv", "/tmp/export", formatCSV},
		{"file://localhost/tmp/x?format=JSONL", "/tmp/x", formatJSONL},
		{"file:///tmp/with%20space", "/tmp/with space", formatJSONL},
	} {
		c, err := connector.Open(ctx, tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		fc := c.(*Conn)
		if fc.Dir() != tc.dir || fc.Format() != tc.format {
			t.Errorf("%s: dir %q format %q, want %q %q", tc.url, fc.Dir(), fc.Format(), tc.dir, tc.format)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"file:///tmp/x?format=xml", `unknown format "xml"`},
		{"file:relative/dir", "relative path"},
		{"file://otherhost/tmp/x", `names host "otherhost"`},
		{"file://", "no absolute directory"},
		{"file:///tmp/x?fmt=csv", `unknown parameter "fmt"`},
		{"file:///tmp/x?format=csv&format=jsonl", "more than once"},
	} {
		_, err := connector.Open(ctx, tc.url)
		mustContain(t, err, tc.want)
		if !errs.IsConfigError(err) {
			t.Errorf("%s: not a ConfigError: %v", tc.url, err)
		}
	}
	_, err := connector.Open(ctx, "file:///tmp/x?format=xml")
	mustContain(t, err, "jsonl, csv")
}

func TestRegistration(t *testing.T) {
	r, ok := connector.Lookup("file")
	if !ok {
		t.Fatal("file is not registered")
	}
	if r.Example == "" || r.Summary == "" {
		t.Errorf("registration %+v lacks an example or summary", r)
	}
	want := connector.Abilities{Source: true, Destination: true, Checkpoints: true, FinishTables: true}
	if got := connector.Discover(r.Prototype).Abilities; got != want {
		t.Errorf("abilities %+v, want %+v", got, want)
	}
	if _, ok := r.Prototype.(connector.TableFinisher); !ok {
		t.Error("not a TableFinisher")
	}
	if _, ok := r.Prototype.(connector.ChangeApplier); ok {
		t.Error("files must not claim to apply changes")
	}
}
