package conformance

import (
	"testing"

	"github.com/ferrydb/ferry/connector"
)

// checkDescribed: connector.Discover, which users see as the capability
// table, says what the connector's type implements, and the suite calls
// only what is declared: these are the same abilities.
func checkDescribed(t *testing.T, c connector.Connector) {
	var want connector.Abilities
	_, want.Source = c.(connector.Source)
	_, want.CDC = c.(connector.ChangeSource)
	_, want.Destination = c.(connector.Destination)
	_, want.Apply = c.(connector.ChangeApplier)
	_, want.Checkpoints = c.(connector.CheckpointKeeper)
	_, want.FinishTables = c.(connector.TableFinisher)
	_, want.DeferKeys = c.(connector.KeyDeferrer)
	_, want.RawRead = c.(connector.RawReader)
	_, want.RawWrite = c.(connector.RawWriter)
	_, want.EmptyTables = c.(connector.Emptier)
	_, want.SchemaChanges = c.(connector.SchemaChanger)
	_, want.DropFlow = c.(connector.FlowDropper)
	_, want.Preflight = c.(connector.Preflighter)
	_, want.CheckTables = c.(connector.TableChecker)
	_, want.LagBytes = c.(connector.LagMeter)
	_, want.Counts = c.(connector.Counter)
	_, want.ReadSequences = c.(connector.SequenceReader)
	_, want.SetSequences = c.(connector.SequenceWriter)
	_, want.UniqueTables = c.(connector.UniqueReporter)
	_, want.ReadConstraints = c.(connector.ConstraintReader)
	_, want.BuildConstraints = c.(connector.ConstraintBuilder)
	_, want.ReadObjects = c.(connector.ObjectReader)
	_, want.BuildObjects = c.(connector.ObjectBuilder)
	_, want.ReadPartitions = c.(connector.PartitionReader)
	_, want.BuildPartitions = c.(connector.PartitionBuilder)
	_, want.Failover = c.(connector.HistoryChecker)
	want.Failover = want.Failover && want.CDC
	_, want.Retention = c.(connector.RetentionMeter)
	_, want.VerifyHash = c.(connector.RowHasher)
	_, want.ReadKeys = c.(connector.KeyReader)
	_, want.Events = c.(connector.EventWriter)
	_, want.Query = c.(connector.QueryReader)
	_, want.OneWriter = c.(connector.ProcessHolder)
	if d, ok := c.(connector.Declarer); ok {
		want.FullRows = d.Declare().FullRows && want.Apply
		want.SpanApply = d.Declare().SpanApply && want.Apply
	}
	if got := connector.Discover(c).Abilities; got != want {
		t.Fatalf("Discover says %+v, the type declares %+v", got, want)
	}
}
