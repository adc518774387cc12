package pgtest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dumpNoise are the lines of a schema dump that differ between two
// databases holding the same schema: comments and blank lines.
var dumpNoise = regexp.MustCompile(`(?m)^(--.*)?\n`)

// SchemaDump is pg_dump --schema-only --no-owner --no-privileges of the
// given schemas of db, without comments and blank lines, for comparing two
// databases' schemas. The \restrict key is fixed: pg_dump 15.14 and later
// write a random one otherwise.
func (s *Server) SchemaDump(t testing.TB, db string, schemas ...string) string {
	t.Helper()
	args := []string{"--schema-only", "--no-owner", "--no-privileges", "--restrict-key=pgtest", "--dbname", s.AdminURL(db)}
	for _, n := range schemas {
		args = append(args, "--schema", n)
	}
	out, err := exec.Command(filepath.Join(BinDir, "pg_dump"), args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("pg_dump %s: %v: %s", db, err, ee.Stderr)
		}
		t.Fatalf("pg_dump %s: %v", db, err)
	}
	return strings.TrimSpace(dumpNoise.ReplaceAllString(string(out), ""))
}
