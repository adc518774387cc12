package conformance

import (
	"testing"

	"github.com/ferrydb/ferry/connector"
)

// checkDescribed: connector.Describe, which users see as the capability
// table, says what the connector declares, and the suite calls only what
// is declared: these are the same abilities.
func checkDescribed(t *testing.T, c connector.Connector) {
	var want connector.Abilities
	_, want.Source = c.(connector.Source)
	_, want.CDC = c.(connector.ChangeSource)
	_, want.Destination = c.(connector.Destination)
	_, want.Apply = c.(connector.ChangeApplier)
	_, want.Checkpoints = c.(connector.CheckpointKeeper)
	_, want.SchemaChanges = c.(connector.SchemaChanger)
	if got := connector.Describe(c); got != want {
		t.Fatalf("Describe says %+v, the type declares %+v", got, want)
	}
}
