package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/errs"
)

func versionConn(t *testing.T) *Conn {
	t.Helper()
	cfg, err := pgxpool.ParseConfig("postgres://u@db.example:5432/shop")
	if err != nil {
		t.Fatal(err)
	}
	return &Conn{cfg: cfg}
}

// TestServerVersions: PostgreSQL 13 and later are accepted; an older server
// is refused (exit 2) naming its version and the supported ones.
func TestServerVersions(t *testing.T) {
	for v, major := range map[string]int{"15.5 (Debian 15.5-0+deb12u1)": 15, "17beta1": 17, "9.6.24": 9, "12.18": 12, "13.0": 13, "": 0, "x": 0} {
		if got := parseMajor(v); got != major {
			t.Errorf("parseMajor(%q) = %d, want %d", v, got, major)
		}
	}
	for _, ok := range []string{"13.14", "14.0", "17.2", "unknown"} {
		if err := versionConn(t).checkVersion(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, old := range []string{"12.18", "9.6.24"} {
		err := versionConn(t).checkVersion(old)
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "PostgreSQL "+old+" is not supported") || !strings.Contains(err.Error(), "PostgreSQL 13 and later") {
			t.Errorf("%s: %v", old, err)
		}
	}
}
