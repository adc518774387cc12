package connector

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/ferrydb/ferry/errs"
)

// Capabilities is what one connector can do, found once by Discover: a
// typed view for every optional interface it implements (nil when it does
// not), and the same as plain Abilities for people and JSON. The engine,
// ferry connectors, ferry plan, the dashboard and scale-out read it instead
// of asserting interfaces again.
type Capabilities struct {
	Abilities Abilities
	// Hints are the connector's own words for fixes the engine suggests.
	Hints Hints

	Source            Source
	ChangeSource      ChangeSource
	Destination       Destination
	ChangeApplier     ChangeApplier
	CheckpointKeeper  CheckpointKeeper
	TableFinisher     TableFinisher
	TableAppender     TableAppender
	KeyDeferrer       KeyDeferrer
	RawReader         RawReader
	RawWriter         RawWriter
	Emptier           Emptier
	SchemaChanger     SchemaChanger
	FlowDropper       FlowDropper
	Preflighter       Preflighter
	TableChecker      TableChecker
	LagMeter          LagMeter
	PositionMarker    PositionMarker
	Counter           Counter
	SequenceReader    SequenceReader
	SequenceWriter    SequenceWriter
	UniqueReporter    UniqueReporter
	ConstraintReader  ConstraintReader
	ConstraintBuilder ConstraintBuilder
	ObjectReader      ObjectReader
	ObjectBuilder     ObjectBuilder
	PartitionReader   PartitionReader
	PartitionBuilder  PartitionBuilder
	TableAdder        TableAdder
	HistoryChecker    HistoryChecker
	RetentionMeter    RetentionMeter
	ReverseStarter    ReverseStarter
	RowHasher         RowHasher
	ReplicaLagReader  ReplicaLagReader
	ServerIdentifier  ServerIdentifier
	KeyReader         KeyReader
	EventWriter       EventWriter
	QueryReader       QueryReader
	ProcessHolder     ProcessHolder
	Colocated         Colocated
}

// Abilities says in plain values what a connector can do. Each field's json
// tag names it in JSON (the dashboard's /api/flow) and its doc tag says it
// in ferry connectors' table, so a new ability is declared here once.
type Abilities struct {
	Source           bool `json:"source" doc:"source: reads tables"`
	CDC              bool `json:"cdc" doc:"CDC: streams changes"`
	Destination      bool `json:"destination" doc:"destination: writes rows"`
	Apply            bool `json:"apply" doc:"applies changes"`
	FullRows         bool `json:"full_rows" doc:"applies changes to tables without a primary key"`
	Checkpoints      bool `json:"checkpoints" doc:"checkpoints in destination"`
	FinishTables     bool `json:"finish_tables" doc:"finishes tables after the copy (indexes, files)"`
	DeferKeys        bool `json:"defer_keys" doc:"builds primary keys after the copy"`
	RawRead          bool `json:"raw_read" doc:"reads rows undecoded"`
	RawWrite         bool `json:"raw_write" doc:"writes rows undecoded"`
	EmptyTables      bool `json:"empty_tables" doc:"empties its tables when a flow starts over"`
	SchemaChanges    bool `json:"schema_changes" doc:"follows schema changes"`
	DropFlow         bool `json:"drop_flow" doc:"releases what it keeps for a dropped flow"`
	Preflight        bool `json:"preflight" doc:"checks its settings before anything is written"`
	CheckTables      bool `json:"check_tables" doc:"checks tables before creating them"`
	LagBytes         bool `json:"lag_bytes" doc:"measures CDC lag in bytes"`
	Counts           bool `json:"counts" doc:"counts what it receives"`
	ReadSequences    bool `json:"read_sequences" doc:"lists its sequences with their values"`
	SetSequences     bool `json:"set_sequences" doc:"sets sequences to the source's values"`
	UniqueTables     bool `json:"unique_tables" doc:"reports unique constraints besides the primary key"`
	ReadConstraints  bool `json:"read_constraints" doc:"lists unique constraints, foreign keys and checks"`
	BuildConstraints bool `json:"build_constraints" doc:"builds unique constraints, foreign keys and checks at cutover"`
	ReadObjects      bool `json:"read_objects" doc:"lists functions, views, materialized views and triggers"`
	BuildObjects     bool `json:"build_objects" doc:"creates functions, views, materialized views and triggers at cutover"`
	ReadPartitions   bool `json:"read_partitions" doc:"lists the partitions of its partitioned tables"`
	BuildPartitions  bool `json:"build_partitions" doc:"creates the partitions the source gained at cutover"`
	Failover         bool `json:"failover" doc:"resumes a flow on a replica promoted after a failover"`
	Retention        bool `json:"retention" doc:"measures the log it keeps for a flow against its limit"`
	SpanApply        bool `json:"span_apply" doc:"applies a huge source transaction in parts inside one destination transaction"`
	VerifyHash       bool `json:"verify_hash" doc:"hashes its rows in the database for verify"`
	ReadKeys         bool `json:"read_keys" doc:"reads rows by key for verify's re-checks"`
	Events           bool `json:"events" doc:"receives every change unfolded, as an event (a message bus)"`
	Query            bool `json:"query" doc:"replicates a query's result by a watermark column"`
	OneWriter        bool `json:"one_writer" doc:"one process writes it at a time (one worker in scale-out)"`
}

// Ability is one field of Abilities, for tables that list them all.
type Ability struct {
	// Name is the field's JSON name, Doc what it means.
	Name, Doc string
	Has       bool
}

// List is every ability in declaration order.
func (a Abilities) List() []Ability {
	v := reflect.ValueOf(a)
	t := v.Type()
	out := make([]Ability, t.NumField())
	for i := range out {
		f := t.Field(i)
		out[i] = Ability{Name: f.Tag.Get("json"), Doc: f.Tag.Get("doc"), Has: v.Field(i).Bool()}
	}
	return out
}

// Declarer is a connector that says of itself what no interface can show:
// a promise about how it behaves, and the words of its fixes. Declare is
// called on the registration's nil Prototype too, so it must return
// constants and never use its receiver.
type Declarer interface {
	Declare() Declaration
}

// Declaration is what a Declarer says of itself.
type Declaration struct {
	// FullRows: its change applier also applies the changes of a table
	// without a primary key whose source sends whole old rows
	// (model.Table.FullRowIdentity): TableChanges.RowChanges, in order,
	// each matching one row by all its values (a delete of one of two
	// identical rows deletes one). Replaying such changes would duplicate
	// rows, so the engine uses it only with a CheckpointKeeper (the
	// checkpoint in the same transaction makes each batch apply at most
	// once) and a source whose copy is exactly T0
	// (model.Plan.SnapshotConsistent).
	FullRows bool
	// SpanApply: its change writer honours model.ApplyBatch.Continues,
	// keeping one destination transaction open across the parts of a
	// source transaction and rolling it back when closed before the part
	// that ends it. --apply-mode transactional then holds one part of a
	// huge transaction in memory at a time instead of all of it.
	SpanApply bool
	Hints     Hints
}

// Hints are a connector's words for the fixes the engine suggests without
// knowing the database; "" where it has none.
type Hints struct {
	// FullRowIdentity says how to make the source send whole old rows of a
	// table without a primary key ("ALTER TABLE ... REPLICA IDENTITY FULL").
	FullRowIdentity string
}

// Discover finds what c can do. It is the one place that asserts ferry's
// optional interfaces; c may be a nil pointer of the connector's type (a
// Registration's Prototype).
func Discover(c Connector) Capabilities {
	var k Capabilities
	k.Source, _ = c.(Source)
	k.ChangeSource, _ = c.(ChangeSource)
	k.Destination, _ = c.(Destination)
	k.ChangeApplier, _ = c.(ChangeApplier)
	k.CheckpointKeeper, _ = c.(CheckpointKeeper)
	k.TableFinisher, _ = c.(TableFinisher)
	k.TableAppender, _ = c.(TableAppender)
	k.KeyDeferrer, _ = c.(KeyDeferrer)
	k.RawReader, _ = c.(RawReader)
	k.RawWriter, _ = c.(RawWriter)
	k.Emptier, _ = c.(Emptier)
	k.SchemaChanger, _ = c.(SchemaChanger)
	k.FlowDropper, _ = c.(FlowDropper)
	k.Preflighter, _ = c.(Preflighter)
	k.TableChecker, _ = c.(TableChecker)
	k.LagMeter, _ = c.(LagMeter)
	k.PositionMarker, _ = c.(PositionMarker)
	k.Counter, _ = c.(Counter)
	k.SequenceReader, _ = c.(SequenceReader)
	k.SequenceWriter, _ = c.(SequenceWriter)
	k.UniqueReporter, _ = c.(UniqueReporter)
	k.ConstraintReader, _ = c.(ConstraintReader)
	k.ConstraintBuilder, _ = c.(ConstraintBuilder)
	k.ObjectReader, _ = c.(ObjectReader)
	k.ObjectBuilder, _ = c.(ObjectBuilder)
	k.PartitionReader, _ = c.(PartitionReader)
	k.PartitionBuilder, _ = c.(PartitionBuilder)
	k.TableAdder, _ = c.(TableAdder)
	k.HistoryChecker, _ = c.(HistoryChecker)
	k.RetentionMeter, _ = c.(RetentionMeter)
	k.ReverseStarter, _ = c.(ReverseStarter)
	k.RowHasher, _ = c.(RowHasher)
	k.ReplicaLagReader, _ = c.(ReplicaLagReader)
	k.ServerIdentifier, _ = c.(ServerIdentifier)
	k.KeyReader, _ = c.(KeyReader)
	k.EventWriter, _ = c.(EventWriter)
	k.QueryReader, _ = c.(QueryReader)
	k.ProcessHolder, _ = c.(ProcessHolder)
	k.Colocated, _ = c.(Colocated)
	var d Declaration
	if dc, ok := c.(Declarer); ok {
		d = dc.Declare()
	}
	k.Hints = d.Hints
	k.Abilities = Abilities{
		Source:           k.Source != nil,
		CDC:              k.ChangeSource != nil,
		Destination:      k.Destination != nil,
		Apply:            k.ChangeApplier != nil,
		FullRows:         d.FullRows && k.ChangeApplier != nil,
		Checkpoints:      k.CheckpointKeeper != nil,
		FinishTables:     k.TableFinisher != nil,
		DeferKeys:        k.KeyDeferrer != nil,
		RawRead:          k.RawReader != nil,
		RawWrite:         k.RawWriter != nil,
		EmptyTables:      k.Emptier != nil,
		SchemaChanges:    k.SchemaChanger != nil,
		DropFlow:         k.FlowDropper != nil,
		Preflight:        k.Preflighter != nil,
		CheckTables:      k.TableChecker != nil,
		LagBytes:         k.LagMeter != nil,
		Counts:           k.Counter != nil,
		ReadSequences:    k.SequenceReader != nil,
		SetSequences:     k.SequenceWriter != nil,
		UniqueTables:     k.UniqueReporter != nil,
		ReadConstraints:  k.ConstraintReader != nil,
		BuildConstraints: k.ConstraintBuilder != nil,
		ReadObjects:      k.ObjectReader != nil,
		BuildObjects:     k.ObjectBuilder != nil,
		ReadPartitions:   k.PartitionReader != nil,
		BuildPartitions:  k.PartitionBuilder != nil,
		Failover:         k.HistoryChecker != nil && k.ChangeSource != nil,
		Retention:        k.RetentionMeter != nil,
		SpanApply:        d.SpanApply && k.ChangeApplier != nil,
		VerifyHash:       k.RowHasher != nil,
		ReadKeys:         k.KeyReader != nil,
		Events:           k.EventWriter != nil,
		Query:            k.QueryReader != nil,
		OneWriter:        k.ProcessHolder != nil,
	}
	return k
}

// Offering lists the schemes of the registered connectors that have an
// ability, for fixes that name where to turn ("a destination such as
// postgres"), so the engine names no database itself.
func Offering(has func(Abilities) bool) []string {
	var out []string
	for _, r := range Registered() {
		if has(Discover(r.Prototype).Abilities) {
			out = append(out, r.Scheme)
		}
	}
	return out
}

// SuchAs words a list of schemes for a fix: "such as a, b or c"; "" for
// none.
func SuchAs(schemes []string) string {
	switch len(schemes) {
	case 0:
		return ""
	case 1:
		return " such as " + schemes[0]
	}
	return " such as " + strings.Join(schemes[:len(schemes)-1], ", ") + " or " + schemes[len(schemes)-1]
}

// NotSource refuses a connector that cannot be a source, naming the
// registered ones that can.
func NotSource(name string) error {
	return errs.BadConfig(fmt.Sprintf("%s cannot be a source", name), "use a source connector"+SuchAs(Offering(func(a Abilities) bool { return a.Source })))
}

// NotDestination refuses a connector that cannot be a destination, naming
// the registered ones that can.
func NotDestination(name string) error {
	return errs.BadConfig(fmt.Sprintf("%s cannot be a destination", name), "use a destination connector"+SuchAs(Offering(func(a Abilities) bool { return a.Destination })))
}
