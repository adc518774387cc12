package flow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydb/ferry/errs"
)

// Mode says which phases a flow runs.
type Mode string

const (
	ModeAuto     Mode = ""         // full when both sides can, else snapshot
	ModeFull     Mode = "full"     // copy, then CDC from T0
	ModeSnapshot Mode = "snapshot" // copy only
	ModeCDC      Mode = "cdc"      // changes only, from now (or the last checkpoint)
)

// ParseMode validates a --mode value.
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(s)) {
	case ModeAuto, ModeFull, ModeSnapshot, ModeCDC:
		return Mode(strings.ToLower(s)), nil
	}
	return "", fmt.Errorf("unknown mode %q: use full, snapshot or cdc", s)
}

// DefaultPartitionRows is the partition size when none is given.
const DefaultPartitionRows = 250_000

// Config is a flow's definition: the flow file's schema, and what the
// command line fills in.
type Config struct {
	Name        string   `yaml:"name"`
	Source      string   `yaml:"source"`
	Destination string   `yaml:"destination"`
	Mode        Mode     `yaml:"mode"`
	Tables      []string `yaml:"tables"`
	Rename      []string `yaml:"rename"`
	// Transforms of the tables' rows, on the copy and the change stream
	// alike (package transform): columns left out (TABLE.COLUMN), renamed
	// (TABLE.COLUMN=NEW), masked (TABLE.COLUMN=redact|hash|lastN), rows
	// filtered (TABLE: CEL) and columns computed (TABLE.COLUMN = CEL).
	Exclude       []string `yaml:"exclude"`
	RenameColumns []string `yaml:"rename_columns"`
	Mask          []string `yaml:"mask"`
	Filter        []string `yaml:"filter"`
	Compute       []string `yaml:"compute"`
	// MaskSalt names the secret (FERRY_SECRET_<NAME> in the environment
	// of every process running the flow) that salts mask=hash.
	MaskSalt string `yaml:"mask_salt"`
	// Parallel is the number of partitions copied at once (readers and writers).
	Parallel int `yaml:"parallel"`
	// Writers is the number of parallel CDC appliers.
	Writers       int   `yaml:"writers"`
	BatchRows     int   `yaml:"batch_rows"`
	PartitionRows int64 `yaml:"partition_rows"`
	// FixedPartitionRows says PartitionRows was given (--partition-rows,
	// partition_rows): every table gets it. Otherwise it is the base the
	// planner grows a large table's partitions from (PartitionRowsFor).
	FixedPartitionRows bool          `yaml:"-"`
	ApplyBatch         int           `yaml:"apply_batch"`
	ApplyLinger        time.Duration `yaml:"apply_linger"`
	Until              string        `yaml:"until"`
	StateDir           string        `yaml:"state_dir"`
	// RetryTimeout is how long an unavailable database (restarted, cut off)
	// is retried before the flow fails: the source's partition reads during
	// the copy, the destination's appliers during CDC.
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// SyncSequences is how often CDC copies the source's sequences to the
	// destination; 0 never (a cutover sets them anyway).
	SyncSequences time.Duration `yaml:"sync_sequences"`
	// DDL is what CDC does when the source changes a table's schema or
	// truncates it: DDLApply (the default) follows the change, DDLStop
	// stops the flow before anything after it is applied.
	DDL string `yaml:"ddl"`
	// ApplyMode is how CDC applies changes: ApplyParallel (the default)
	// across keys by Writers writers, or ApplyTransactional, one writer
	// committing whole source transactions, so a reader of the destination
	// never sees half of one.
	ApplyMode string `yaml:"apply_mode"`
	// MaxRate caps the copy's reads across all lanes (ParseRate): rows per
	// second ("5000"), or bytes per second with a unit ("10MB/s"); empty
	// for no limit.
	MaxRate string `yaml:"max_rate"`
	// Reverse marks the way back after a cutover (ferry sync --reverse):
	// changes only, from the start ferry cutover --reverse recorded at the
	// source (the forward flow's destination), which the plan adopts.
	Reverse bool `yaml:"-"`
	// MaxReplicaLag pauses the copy's reads and incremental snapshots'
	// chunk reads while the source's own replicas lag more than this
	// (ReplicaLagQuery); 0 never.
	MaxReplicaLag time.Duration `yaml:"max_replica_lag"`
	// ReplicaLagQuery is run on the source for the replicas' lag: one
	// number of seconds. Empty: the source's own measure (PostgreSQL: the
	// largest replay_lag in pg_stat_replication); MySQL and MariaDB have
	// none and need it.
	ReplicaLagQuery string `yaml:"replica_lag_query"`
	// Queries make the flow a query replication (query.go): each query's
	// result is kept in a destination table by its watermark, instead of
	// tables copied and streamed.
	Queries []Query `yaml:"queries"`
	// Every runs the queries again this often; 0 runs them once.
	Every time.Duration `yaml:"every"`
	// Lookback re-reads a margin below the last watermark (ParseLookback).
	Lookback string `yaml:"lookback"`
}

// Transforms reports whether the flow reshapes rows (--exclude,
// --rename-column, --mask, --filter, --compute).
func (c *Config) Transforms() bool {
	return len(c.Exclude)+len(c.RenameColumns)+len(c.Mask)+len(c.Filter)+len(c.Compute) > 0
}

// How CDC applies changes (Config.ApplyMode).
const (
	ApplyParallel      = "parallel"
	ApplyTransactional = "transactional"
)

// Transactional reports whether CDC applies whole source transactions on
// one writer (--apply-mode transactional).
func (c *Config) Transactional() bool { return c.ApplyMode == ApplyTransactional }

// What CDC does with a schema change (Config.DDL).
const (
	DDLApply = "apply"
	DDLStop  = "stop"
)

// LoadFile reads a YAML flow file. Unknown keys are errors, so a typo never
// silently falls back to a default. ${VAR} in a value is replaced by the
// environment variable VAR (Interpolate), so a file can be kept in version
// control while the passwords stay in the environment.
func LoadFile(path string) (*Config, error) {
	b, err := readYAML(path)
	if err != nil {
		return nil, err
	}
	if isFleet(b) {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("flow file %s defines several flows (flows:)", path), Fix: "start a fleet file's flows on Temporal workers: ferry run -f " + path}
	}
	var c Config
	if err := decodeKnown(b, &c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("flow file %s is empty: it needs at least a source and a destination", path)
		}
		return nil, fmt.Errorf("flow file %s: %w", path, err)
	}
	return &c, nil
}

// Fleet is a fleet file: many flows started together (ferry run -f), each
// a flow file's keys with its own name.
type Fleet struct {
	Flows []Config `yaml:"flows"`
}

// IsFleetFile reports whether the YAML file at path defines several
// flows (a top-level flows: key).
func IsFleetFile(path string) (bool, error) {
	b, err := readYAML(path)
	if err != nil {
		return false, err
	}
	return isFleet(b), nil
}

// LoadFleet reads a fleet file as LoadFile reads a flow file. Every flow
// needs a name, unique in the file.
func LoadFleet(path string) ([]*Config, error) {
	b, err := readYAML(path)
	if err != nil {
		return nil, err
	}
	var f Fleet
	if err := decodeKnown(b, &f); err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", path, err)
	}
	if len(f.Flows) == 0 {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("fleet file %s lists no flow", path), Fix: "list the flows under flows:, each with a name, a source and a destination"}
	}
	seen := map[string]bool{}
	out := make([]*Config, len(f.Flows))
	for i := range f.Flows {
		c := &f.Flows[i]
		switch {
		case c.Name == "":
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("fleet file %s: flow %d has no name", path, i+1), Fix: "give every flow of a fleet a name: it is the flow's ID on Temporal"}
		case seen[c.Name]:
			return nil, &errs.ConfigError{Msg: fmt.Sprintf("fleet file %s: two flows are named %q", path, c.Name), Fix: "give every flow its own name"}
		}
		seen[c.Name] = true
		out[i] = c
	}
	return out, nil
}

// readYAML reads a YAML file with ${VAR} interpolated in its values.
func readYAML(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flow file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("flow file %s: %w", path, err)
	}
	changed, err := interpolateNode(&doc, os.LookupEnv)
	if err != nil {
		return nil, &errs.ConfigError{Msg: fmt.Sprintf("flow file %s: %v", path, err), Fix: "set the variable, or write $${ for a literal ${"}
	}
	if changed {
		if b, err = yaml.Marshal(&doc); err != nil {
			return nil, fmt.Errorf("flow file %s: %w", path, err)
		}
	}
	return b, nil
}

// isFleet tells a fleet file (a top-level flows: key) from a flow file.
func isFleet(b []byte) bool {
	var top map[string]yaml.Node
	return yaml.Unmarshal(b, &top) == nil && top["flows"].Kind != 0
}

// decodeKnown decodes YAML into v, refusing unknown keys.
func decodeKnown(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

var interpolateRe = regexp.MustCompile(`\$?\$\{([^}]*)\}`)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Interpolate replaces each ${VAR} in s by the value lookup gives VAR; $${
// is a literal ${. A variable lookup does not know is an error naming it:
// an empty password or host would fail later, far from the cause.
func Interpolate(s string, lookup func(string) (string, bool)) (string, error) {
	var firstErr error
	out := interpolateRe.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "$$") {
			return m[1:]
		}
		name := m[2 : len(m)-1]
		if !envNameRe.MatchString(name) {
			if firstErr == nil {
				firstErr = fmt.Errorf("${%s} is not a variable name (letters, digits and '_')", name)
			}
			return m
		}
		v, ok := lookup(name)
		if !ok && firstErr == nil {
			firstErr = fmt.Errorf("${%s} is not set", name)
		}
		return v
	})
	return out, firstErr
}

// interpolateNode interpolates every scalar value of a YAML document (not
// its keys, not its comments) and reports whether any changed.
func interpolateNode(n *yaml.Node, lookup func(string) (string, bool)) (bool, error) {
	changed := false
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		v, err := Interpolate(n.Value, lookup)
		if err != nil {
			return false, fmt.Errorf("line %d: %w", n.Line, err)
		}
		if v != n.Value {
			// A quoted value stays a string; a plain one takes the type
			// its value has (parallel: ${N}), as if written in the file.
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				n.Tag = ""
			}
			n.Value = v
			changed = true
		}
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // a key
		}
		ch, err := interpolateNode(c, lookup)
		if err != nil {
			return false, err
		}
		changed = changed || ch
	}
	return changed, nil
}

// Defaults fills unset settings.
func (c *Config) Defaults() {
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.Transactional() {
		// One writer: a source transaction's changes commit together.
		c.Writers = 1
	}
	if c.Writers <= 0 {
		c.Writers = c.Parallel
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 5000
	}
	if c.PartitionRows <= 0 {
		c.PartitionRows = DefaultPartitionRows
	}
	if c.ApplyBatch <= 0 {
		c.ApplyBatch = 10_000
	}
	if c.ApplyLinger <= 0 {
		c.ApplyLinger = 50 * time.Millisecond
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = 5 * time.Minute
	}
}

// Validate checks the settings that do not need a connection.
func (c *Config) Validate() error {
	if c.Source == "" {
		return errs.BadConfig("no source URL", "ferry sync SOURCE DESTINATION")
	}
	if c.Destination == "" {
		return errs.BadConfig("no destination URL", "ferry sync SOURCE DESTINATION")
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return &errs.ConfigError{Msg: err.Error()}
	}
	switch c.DDL {
	case "", DDLApply, DDLStop:
	default:
		return errs.BadConfig(fmt.Sprintf("unknown --ddl %q", c.DDL), "use apply (follow the source's schema changes, the default) or stop (stop the flow at the first one)")
	}
	switch c.ApplyMode {
	case "", ApplyParallel, ApplyTransactional:
	default:
		return errs.BadConfig(fmt.Sprintf("unknown --apply-mode %q", c.ApplyMode), "use parallel (changes applied across keys by --writers writers, the default) or transactional (one writer, whole source transactions per destination transaction)")
	}
	if c.Transactional() && c.Writers > 1 {
		return errs.BadConfig(fmt.Sprintf("--apply-mode transactional applies with one writer, and --writers is %d", c.Writers), "leave --writers out with --apply-mode transactional")
	}
	if _, err := ParseRate(c.MaxRate); err != nil {
		return errs.BadConfig(fmt.Sprintf("invalid --max-rate %q: %v", c.MaxRate, err), "give rows per second (5000) or bytes per second with a unit (10MB/s, 512KiB/s)")
	}
	if c.ReplicaLagQuery != "" && c.MaxReplicaLag == 0 {
		return errs.BadConfig("--replica-lag-query is set but --max-replica-lag is not", "give --max-replica-lag, the lag past which the flow backs off (e.g. 30s)")
	}
	switch c.Until {
	case "", "caught-up":
	default:
		return errs.BadConfig(fmt.Sprintf("unknown --until %q", c.Until), "the only value is caught-up")
	}
	if c.Name != "" && !nameRe.MatchString(c.Name) {
		return errs.BadConfig(fmt.Sprintf("invalid flow name %q", c.Name), "use letters, digits, '.', '_' and '-'")
	}
	// A flow file's 0 is an unset key (the default); only a negative value
	// is a mistake there. The command line refuses 0 as well.
	for _, v := range []struct {
		key string
		neg bool
		val any
	}{
		{"parallel", c.Parallel < 0, c.Parallel}, {"writers", c.Writers < 0, c.Writers},
		{"batch_rows", c.BatchRows < 0, c.BatchRows}, {"partition_rows", c.PartitionRows < 0, c.PartitionRows},
		{"apply_batch", c.ApplyBatch < 0, c.ApplyBatch}, {"apply_linger", c.ApplyLinger < 0, c.ApplyLinger},
		{"retry_timeout", c.RetryTimeout < 0, c.RetryTimeout},
		{"sync_sequences", c.SyncSequences < 0, c.SyncSequences},
		{"max_replica_lag", c.MaxReplicaLag < 0, c.MaxReplicaLag},
	} {
		if v.neg {
			return errs.BadConfig(fmt.Sprintf("%s must be positive, not %v", v.key, v.val), "leave it out (or 0) for the default")
		}
	}
	if _, err := NewFilter(c.Tables); err != nil {
		return &errs.ConfigError{Msg: err.Error(), Fix: "patterns look like shop.*,!shop.tmp_*"}
	}
	if _, err := ParseRenames(c.Rename); err != nil {
		return &errs.ConfigError{Msg: err.Error()}
	}
	return c.validateQueries()
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// FlowName returns the flow's name: the configured one, or one derived from
// the source, destination and renames. It never contains a secret: it is
// built from the schemes and a hash of the redacted URLs. The table
// selection is not part of it: a flow run again with a wider or narrower
// --tables is the same flow, which adds or drops the tables.
func (c *Config) FlowName() string {
	if c.Name != "" {
		return c.Name
	}
	if len(c.Queries) > 0 {
		return c.derivedName(errs.Redact(c.Source), errs.Redact(c.Destination), "query:"+c.queryNames())
	}
	return c.derivedName(errs.Redact(c.Source), errs.Redact(c.Destination), strings.Join(c.Rename, ","))
}

// LegacyFlowName is the name FlowName derived before the table selection
// left it (the selection was hashed in): state made then is found under it.
// With --name it is that name.
func (c *Config) LegacyFlowName() string {
	if c.Name != "" || len(c.Queries) > 0 {
		// A query flow is newer than the older names.
		return c.FlowName()
	}
	if c.Name != "" {
		return c.Name
	}
	return c.derivedName(errs.Redact(c.Source), errs.Redact(c.Destination), strings.Join(c.Tables, ","), strings.Join(c.Rename, ","))
}

// EarlierFlowNames are the names ferry derived for this flow before
// (LegacyFlowName, and the names derived from URLs redacted as before
// 2026-12-06, errs.RedactAsBefore), other than FlowName, in the order to
// look for an earlier run's state under them. None with --name.
func (c *Config) EarlierFlowNames() []string {
	if c.Name != "" {
		return nil
	}
	now := c.FlowName()
	src, dst := errs.RedactAsBefore(c.Source), errs.RedactAsBefore(c.Destination)
	names := []string{c.LegacyFlowName()}
	if len(c.Queries) > 0 {
		names = append(names, c.derivedName(src, dst, "query:"+c.queryNames()))
	} else {
		names = append(names, c.derivedName(src, dst, strings.Join(c.Rename, ",")),
			c.derivedName(src, dst, strings.Join(c.Tables, ","), strings.Join(c.Rename, ",")))
	}
	var out []string
	for _, n := range names {
		if n != now && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Config) derivedName(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%s-to-%s-%s", scheme(c.Source), scheme(c.Destination), hex.EncodeToString(h.Sum(nil))[:10])
}

func scheme(raw string) string {
	if s := errs.SchemeOf(raw); s != "" {
		return s
	}
	return "x"
}

// Identity is what must not change between runs of one flow: resuming with
// another source, destination or renames would mix two flows' state. The
// table selection may change (Selection); the engine adds and drops the
// tables.
func (c *Config) Identity() string {
	return strings.Join([]string{errs.Redact(c.Source), errs.Redact(c.Destination), strings.Join(c.Rename, ",")}, "\n")
}

// Selection is the table selection as the state records it, to tell on a
// resume whether --tables changed.
func (c *Config) Selection() string { return (&Filter{include: c.Tables}).String() }

// SourceMoved tells whether an identity an earlier run stored is this flow's
// but for the source's host and port: the same scheme, database, user,
// destination and renames. It returns the earlier source (redacted). A
// source whose positions hold across servers (connector.HistoryChecker)
// may then resume the flow on the new host, a promoted replica.
func (c *Config) SourceMoved(stored string) (from string, ok bool) {
	parts := strings.Split(stored, "\n")
	if len(parts) == 4 { // the older format, with the selection
		parts = []string{parts[0], parts[1], parts[3]}
	}
	if len(parts) != 3 || parts[1] != errs.Redact(c.Destination) || parts[2] != strings.Join(c.Rename, ",") {
		return "", false
	}
	was, err1 := url.Parse(parts[0])
	now, err2 := url.Parse(errs.Redact(c.Source))
	if err1 != nil || err2 != nil || was.Host == now.Host {
		return "", false
	}
	if was.Scheme != now.Scheme || was.Path != now.Path || was.User.Username() != now.User.Username() {
		return "", false
	}
	return parts[0], true
}

// MatchIdentity tells whether an identity an earlier run stored is this
// flow's. It accepts the older format, which held the table selection too,
// and then also returns that selection (ok and legacy true), so the caller
// can rewrite the identity and record the selection.
func (c *Config) MatchIdentity(stored string) (ok, legacy bool, selection string) {
	if stored == c.Identity() {
		return true, false, ""
	}
	// Stored by a ferry that redacted URLs as before 2026-12-06.
	if before := strings.Join([]string{errs.RedactAsBefore(c.Source), errs.RedactAsBefore(c.Destination), strings.Join(c.Rename, ",")}, "\n"); stored == before {
		return true, false, ""
	}
	parts := strings.Split(stored, "\n")
	switch len(parts) {
	case 3:
		return sameIdentity(parts, c), false, ""
	case 4:
		if !sameIdentity([]string{parts[0], parts[1], parts[3]}, c) {
			return false, false, ""
		}
		return true, true, parts[2]
	}
	return false, false, ""
}

// sameIdentity compares a stored identity's source, destination and
// renames with c's, but for the parameters of how ferry connects (TLS,
// where the password comes from, timeouts): a flow that moves to verified
// TLS, or its certificates to another path, is the same flow.
func sameIdentity(parts []string, c *Config) bool {
	return sameWhere(parts[0], errs.Redact(c.Source)) && sameWhere(parts[1], errs.Redact(c.Destination)) && parts[2] == strings.Join(c.Rename, ",")
}

// transportParams are URL parameters that say how to reach a database,
// not which one or what to do there.
var transportParams = []string{"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslsni", "sslnegotiation",
	"tls", "ssl-ca", "ssl-cert", "ssl-key", "ssl_ca", "ssl_cert", "ssl_key", "password_file", "passfile", "connect_timeout", "timeout", "application_name"}

// sameWhere tells whether two redacted connection URLs name the same
// database the same way but for transportParams and the password.
func sameWhere(a, b string) bool {
	if a == b {
		return true
	}
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Scheme == "" {
		return false
	}
	strip := func(u *url.URL) string {
		q := u.Query()
		for _, p := range transportParams {
			q.Del(p)
		}
		v := *u
		v.RawQuery = q.Encode()
		if u.User != nil {
			v.User = url.User(u.User.Username()) // a password or a password file
		}
		return v.String()
	}
	return strip(ua) == strip(ub)
}
