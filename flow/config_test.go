package flow

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/errs"
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

// TestValidateRefusesNegativeSettings: a flow file's 0 is an unset key (the
// default), a negative value is a mistake named by its key.
func TestValidateRefusesNegativeSettings(t *testing.T) {
	base := Config{Source: "fake://", Destination: "null://"}
	if err := base.Validate(); err != nil {
		t.Fatalf("zero settings: %v", err)
	}
	for key, set := range map[string]func(*Config){
		"parallel":        func(c *Config) { c.Parallel = -1 },
		"writers":         func(c *Config) { c.Writers = -2 },
		"batch_rows":      func(c *Config) { c.BatchRows = -3 },
		"partition_rows":  func(c *Config) { c.PartitionRows = -4 },
		"apply_batch":     func(c *Config) { c.ApplyBatch = -5 },
		"apply_linger":    func(c *Config) { c.ApplyLinger = -time.Second },
		"retry_timeout":   func(c *Config) { c.RetryTimeout = -time.Minute },
		"sync_sequences":  func(c *Config) { c.SyncSequences = -time.Second },
		"max_replica_lag": func(c *Config) { c.MaxReplicaLag = -time.Second },
	} {
		c := base
		set(&c)
		err := c.Validate()
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), key+" must be positive") {
			t.Errorf("%s negative: %v", key, err)
		}
	}
}

// TestLoadFileInterpolatesTheEnvironment: ${VAR} in a value is the
// environment's VAR, typed as if written there; $${ is a literal ${; an
// unset variable is an error naming it and its line.
func TestLoadFileInterpolatesTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FERRY_TEST_SRC_PASSWORD", "p@ss: #123")
	t.Setenv("FERRY_TEST_PARALLEL", "7")
	t.Setenv("FERRY_TEST_PIN", "123456")
	path := filepath.Join(dir, "flow.yaml")
	body := "# ${NOT_A_VALUE} in a comment is left alone\n" +
		"source: postgres://app:${FERRY_TEST_SRC_PASSWORD}@db/shop\n" +
		"destination: 'mysql://app:${FERRY_TEST_PIN}@db2/shop?note=$${literal}'\n" +
		"name: ${FERRY_TEST_PIN}\n" +
		"parallel: ${FERRY_TEST_PARALLEL}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "postgres://app:p@ss: #123@db/shop" || c.Destination != "mysql://app:123456@db2/shop?note=${literal}" || c.Parallel != 7 || c.Name != "123456" {
		t.Errorf("got %+v", c)
	}
	if err := os.WriteFile(path, []byte("source: fake://\ndestination: postgres://u:${FERRY_TEST_UNSET_VAR}@h/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(path)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "line 2: ${FERRY_TEST_UNSET_VAR} is not set") || !strings.Contains(err.Error(), path) {
		t.Errorf("unset variable: %v", err)
	}
}

// TestSourceMoved: an identity that differs from the flow's only in the
// source's host and port is a moved source (a promoted replica); another
// database, user, scheme, destination or --rename is another flow.
func TestSourceMoved(t *testing.T) {
	was := Config{Source: "mysql://app:pw@db1:3306/shop", Destination: "postgres://u@dst/shop", Rename: []string{"a:b"}}
	stored := was.Identity()
	for _, c := range []struct {
		src, dst string
		rename   []string
		moved    bool
	}{
		{"mysql://app:other@db2:3307/shop", was.Destination, was.Rename, true},
		{"mysql://app:pw@db1:3306/shop", was.Destination, was.Rename, false}, // the same flow, not moved
		{"mysql://app:pw@db2:3306/other", was.Destination, was.Rename, false},
		{"mysql://root:pw@db2:3306/shop", was.Destination, was.Rename, false},
		{"postgres://app:pw@db2:3306/shop", was.Destination, was.Rename, false},
		{"mysql://app:pw@db2:3306/shop", "postgres://u@dst/other", was.Rename, false},
		{"mysql://app:pw@db2:3306/shop", was.Destination, nil, false},
	} {
		now := Config{Source: c.src, Destination: c.dst, Rename: c.rename}
		from, moved := now.SourceMoved(stored)
		if moved != c.moved || (moved && from != errs.Redact(was.Source)) {
			t.Errorf("%s -> %s %v: moved %v from %q; want %v", c.src, c.dst, c.rename, moved, from, c.moved)
		}
	}
	// The older four-line identity (with the selection) is read too.
	parts := strings.Split(stored, "\n")
	legacy := strings.Join([]string{parts[0], parts[1], "shop.*", parts[2]}, "\n")
	if _, moved := (&Config{Source: "mysql://app@db2:3306/shop", Destination: was.Destination, Rename: was.Rename}).SourceMoved(legacy); !moved {
		t.Error("a moved source with an older identity was not recognized")
	}
}

// TestIdentityIgnoresHowFerryConnects: a flow whose URLs change only in
// how ferry reaches the databases (TLS parameters, a password file) is the
// same flow; another database or another parameter is not.
func TestIdentityIgnoresHowFerryConnects(t *testing.T) {
	was := Config{Source: "postgres://app:pw@db1/shop?sslmode=require", Destination: "mysql://u:pw@db2/shop?tls=true"}
	stored := was.Identity()
	for _, c := range []struct {
		src, dst string
		same     bool
	}{
		{"postgres://app:pw@db1/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem", "mysql://u@db2/shop?ssl-ca=/ca.pem&password_file=/run/pw", true},
		{"postgres://app:pw@db1/shop", "mysql://u:pw@db2/shop", true},
		{"postgres://app:pw@db1/other?sslmode=require", "mysql://u:pw@db2/shop?tls=true", false},
		{"postgres://app:pw@db1/shop?sslmode=require&publication=mine", "mysql://u:pw@db2/shop?tls=true", false},
	} {
		now := Config{Source: c.src, Destination: c.dst}
		if ok, _, _ := now.MatchIdentity(stored); ok != c.same {
			t.Errorf("%s, %s: same flow %v, want %v", c.src, c.dst, ok, c.same)
		}
	}
}

// TestReplicaLagQueryNeedsTheLimit: a lag query without --max-replica-lag
// would never be run; refused, exit 2, saying what to add.
func TestReplicaLagQueryNeedsTheLimit(t *testing.T) {
	c := Config{Source: "fake://", Destination: "null://", ReplicaLagQuery: "SELECT 1"}
	if err := c.Validate(); !errs.IsConfigError(err) || !strings.Contains(err.Error(), "--max-replica-lag is not") {
		t.Fatalf("a query without the limit: %v", err)
	}
	c.MaxReplicaLag = 30 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("a query with the limit: %v", err)
	}
}

// A fleet file lists named flows; LoadFile refuses one, LoadFleet refuses
// a flow without a name or two of one name.
func TestFleetFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "flows:\n  - name: a\n    source: s\n    destination: d\n    parallel: 3\n  - name: b\n    source: s2\n    destination: d2\n")
	flows, err := LoadFleet(good)
	if err != nil || len(flows) != 2 || flows[0].Parallel != 3 || flows[1].Source != "s2" {
		t.Fatalf("LoadFleet: %v %+v", err, flows)
	}
	if ok, err := IsFleetFile(good); !ok || err != nil {
		t.Fatalf("IsFleetFile of a fleet file: %v, %v", ok, err)
	}
	if _, err := LoadFile(good); err == nil || !strings.Contains(err.Error(), "ferry run -f") {
		t.Fatalf("LoadFile of a fleet file: %v", err)
	}
	for body, want := range map[string]string{
		"flows:\n  - name: a\n    source: s\n    destination: d\n  - name: a\n    source: s\n    destination: d\n": `two flows are named "a"`,
		"flows:\n  - source: s\n    destination: d\n":                                                              "flow 1 has no name",
		"flows: []\n":                         "lists no flow",
		"flows:\n  - name: a\n    sauce: s\n": "sauce",
	} {
		if _, err := LoadFleet(write("bad.yaml", body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadFleet(%q): %v, want %q", body, err, want)
		}
	}
	if ok, _ := IsFleetFile(write("one.yaml", "source: s\ndestination: d\n")); ok {
		t.Error("a flow file taken for a fleet file")
	}
}

// A URL with an '@' in a query value redacts differently since
// 2026-12-06 (up to its last '@'): the name ferry derived for the flow
// before, and the identity it stored, still find it, so it resumes
// instead of starting over into tables that hold its rows.
func TestFlowsNamedBeforeTheRedactionChangeAreFound(t *testing.T) {
	c := &Config{Source: "postgres://app:pw@db/shop?application_name=me@example.com", Destination: "sqlite:///tmp/x.db", Tables: []string{"public.orders"}}
	before := "postgres://app:xxxxx@db/shop?application_name=me@example.com"
	if got := errs.RedactAsBefore(c.Source); got != before {
		t.Fatalf("RedactAsBefore = %q, want %q", got, before)
	}
	if errs.Redact(c.Source) == before {
		t.Fatal("the URL's redaction did not change: the test proves nothing")
	}
	dst := errs.Redact(c.Destination)
	for _, want := range []string{c.derivedName(before, dst, ""), c.derivedName(before, dst, "public.orders", "")} {
		if !slicesContains(c.EarlierFlowNames(), want) {
			t.Errorf("earlier names %v lack %q", c.EarlierFlowNames(), want)
		}
	}
	if ok, legacy, _ := c.MatchIdentity(before + "\n" + dst + "\n"); !ok || legacy {
		t.Errorf("the identity stored before does not match (%v, %v)", ok, legacy)
	}
	if ok, _, _ := c.MatchIdentity("postgres://app:xxxxx@other/shop?application_name=me@example.com\n" + dst + "\n"); ok {
		t.Error("another source's identity matches")
	}
	c.Name = "shop"
	if n := c.EarlierFlowNames(); n != nil {
		t.Errorf("--name shop has earlier names %v", n)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
