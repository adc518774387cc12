package connector_test

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/mysql"
	"github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
)

// Discover gives a typed view exactly for what the connector implements,
// Abilities says the same in plain values, and what a connector declares
// (whole-row changes, its hints) comes with them.
func TestDiscoverFindsWhatTheTypeImplements(t *testing.T) {
	pg := connector.Discover((*postgres.Conn)(nil))
	if pg.Source == nil || pg.ChangeSource == nil || pg.ChangeApplier == nil || pg.CheckpointKeeper == nil || pg.Counter != nil {
		t.Errorf("postgres: %+v", pg)
	}
	if a := pg.Abilities; !a.Source || !a.CDC || !a.Apply || !a.FullRows || a.Counts || !strings.Contains(pg.Hints.FullRowIdentity, "REPLICA IDENTITY FULL") {
		t.Errorf("postgres abilities %+v, hints %+v", a, pg.Hints)
	}
	if pg.SequenceReader == nil || pg.SequenceWriter == nil || !pg.Abilities.ReadSequences || !pg.Abilities.SetSequences {
		t.Errorf("postgres reads and sets sequences: %+v", pg.Abilities)
	}
	my := connector.Discover((*mysql.Conn)(nil))
	// MySQL's AUTO_INCREMENT counters are its sequences.
	if my.SequenceReader == nil || my.SequenceWriter == nil || !my.Abilities.SetSequences || !my.Abilities.ReadConstraints || !my.Abilities.BuildConstraints {
		t.Errorf("mysql reads and sets AUTO_INCREMENT counters and constraints: %+v", my.Abilities)
	}
	if a := my.Abilities; !a.CDC || !a.Apply || a.FullRows || !strings.Contains(my.Hints.FullRowIdentity, "binlog_row_image=FULL") {
		t.Errorf("mysql abilities %+v, hints %+v", a, my.Hints)
	}
	dst := connector.Discover(&null.Destination{})
	if dst.Source != nil || dst.ChangeApplier == nil || dst.Counter == nil || dst.CheckpointKeeper != nil {
		t.Errorf("null destination: %+v", dst)
	}
	if a := dst.Abilities; a.Source || !a.Destination || !a.Apply || !a.Counts || a.Checkpoints || a.FullRows {
		t.Errorf("null destination abilities: %+v", a)
	}
	if none := connector.Discover(nil); none.Abilities != (connector.Abilities{}) {
		t.Errorf("nothing discovered %+v in a nil connector", none.Abilities)
	}
}

// Every ability has a JSON name and a line for ferry connectors, and List
// gives them in declaration order with their values.
func TestAbilitiesListEveryField(t *testing.T) {
	list := connector.Abilities{CDC: true, Counts: true}.List()
	if n := reflect.TypeFor[connector.Abilities]().NumField(); len(list) != n {
		t.Fatalf("List has %d abilities, the type %d", len(list), n)
	}
	seen := map[string]bool{}
	for _, a := range list {
		if a.Name == "" || a.Doc == "" || seen[a.Name] {
			t.Errorf("ability %+v lacks a name or a doc, or repeats one", a)
		}
		seen[a.Name] = true
		if a.Has != (a.Name == "cdc" || a.Name == "counts") {
			t.Errorf("ability %s: has %v", a.Name, a.Has)
		}
	}
}

// A fix names the registered connectors that can do what it asks.
func TestOfferingNamesTheRegisteredConnectors(t *testing.T) {
	err := connector.NotSource("null://")
	var ce *errs.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "null:// cannot be a source") || !strings.Contains(ce.Fix, "such as mysql or postgres") || strings.Contains(ce.Fix, "null") {
		t.Errorf("not a source: %v", err)
	}
	err = connector.NotDestination("fake://")
	if !errors.As(err, &ce) || !strings.Contains(ce.Fix, "such as mysql, null or postgres") {
		t.Errorf("not a destination: %v", err)
	}
	for _, c := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"a"}, " such as a"}, {[]string{"a", "b", "c"}, " such as a, b or c"}} {
		if got := connector.SuchAs(c.in); got != c.want {
			t.Errorf("SuchAs(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A failed open is a nil Connector, not a nil pointer inside one, which
// would pass a nil check and panic later.
func TestOpenerOfReturnsANilConnectorOnError(t *testing.T) {
	failed := errors.New("refused")
	open := connector.OpenerOf(func(context.Context, *url.URL) (*null.Destination, error) { return nil, failed })
	c, err := open(context.Background(), &url.URL{})
	if c != nil || !errors.Is(err, failed) {
		t.Fatalf("got %#v, %v", c, err)
	}
	open = connector.OpenerOf(func(context.Context, *url.URL) (*null.Destination, error) { return &null.Destination{}, nil })
	if c, err := open(context.Background(), &url.URL{}); err != nil || c == nil {
		t.Fatalf("got %#v, %v", c, err)
	}
}

// TestRetentionNear: a source keeping more than 80% of what it may keep for
// a flow is near its limit; without a limit, never.
func TestRetentionNear(t *testing.T) {
	for _, c := range []struct {
		r    connector.Retention
		near bool
	}{
		{connector.Retention{Retained: 60 << 20, Limit: 64 << 20, Safe: 4 << 20}, true},
		{connector.Retention{Retained: 70 << 20, Limit: 64 << 20, Safe: -6 << 20}, true},
		{connector.Retention{Retained: 30 << 20, Limit: 64 << 20, Safe: 34 << 20}, false},
		{connector.Retention{Retained: 1 << 40}, false},
	} {
		if got := c.r.Near(); got != c.near {
			t.Errorf("%+v: Near() = %v, want %v", c.r, got, c.near)
		}
	}
}
