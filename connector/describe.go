package connector

// Abilities says what a connector can do, derived from the interfaces its
// type implements. The README's capability table is generated from it.
type Abilities struct {
	Source, CDC, Destination, Apply, Checkpoints, SchemaChanges bool
}

// Describe derives a connector's abilities from its type.
func Describe(c Connector) Abilities {
	var a Abilities
	_, a.Source = c.(Source)
	_, a.CDC = c.(ChangeSource)
	_, a.Destination = c.(Destination)
	_, a.Apply = c.(ChangeApplier)
	_, a.Checkpoints = c.(CheckpointKeeper)
	_, a.SchemaChanges = c.(SchemaChanger)
	return a
}
