package model

// ObjectKind says what an Object is.
type ObjectKind string

// The schema objects besides tables a destination creates at cutover, in
// the order it prefers among objects that do not depend on each other:
// functions before the views that call them, triggers last.
const (
	ObjectFunction         ObjectKind = "function"
	ObjectProcedure        ObjectKind = "procedure"
	ObjectView             ObjectKind = "view"
	ObjectMaterializedView ObjectKind = "materialized view"
	ObjectTrigger          ObjectKind = "trigger"
	// ObjectAggregate is listed, not created: the source cannot print
	// its definition (Create is empty).
	ObjectAggregate ObjectKind = "aggregate"
)

// Rank orders the kinds for creation when nothing else does.
func (k ObjectKind) Rank() int {
	switch k {
	case ObjectFunction, ObjectProcedure, ObjectAggregate:
		return 0
	case ObjectView:
		return 1
	case ObjectMaterializedView:
		return 2
	case ObjectTrigger:
		return 3
	}
	return 4
}

// Object is a function, procedure, view, materialized view or trigger of
// the flow's schemas, with its source engine's own definition, for a
// destination of the same engine. It is read and created at cutover: a
// materialized view then holds the copied rows, and a trigger never fires
// for a row the flow applied.
type Object struct {
	Kind ObjectKind `json:"kind"`
	// ID names the object uniquely among the objects of one read, the
	// way the engine names it in SQL: "app.total(integer)" for a
	// function, "app.v" for a view, "trg ON app.orders" for a trigger.
	ID string `json:"id"`
	// Schema is the schema it lives in (a trigger's: its table's), Table
	// a trigger's table.
	Schema string    `json:"schema"`
	Table  Namespace `json:"table,omitempty"`
	// Create is the statement that creates it; Then are the statements
	// that finish it (a materialized view's indexes, a trigger's enabled
	// state, comments), in order.
	Create string   `json:"create"`
	Then   []string `json:"then,omitempty"`
	// Owner is the role that owns it at the source ("" for a trigger);
	// SecurityDefiner: a function that runs with its owner's rights.
	Owner           string `json:"owner,omitempty"`
	SecurityDefiner bool   `json:"security_definer,omitempty"`
	// Language is a function's language.
	Language string `json:"language,omitempty"`
	// Needs are the IDs of the other objects of the read it depends on,
	// which must be created first.
	Needs []string `json:"needs,omitempty"`
	// Tables are the tables (and views outside the read) it reads or is
	// on; Uses the functions and types outside the read it names
	// ("app.f(integer)", "app.status"), which must exist at the
	// destination.
	Tables []Namespace `json:"tables,omitempty"`
	Uses   []Use       `json:"uses,omitempty"`
}

// Use is a function or type an Object needs that is not one of the read's
// objects.
type Use struct {
	// Kind is "function" or "type"; Name is its qualified name, a
	// function's with its argument types.
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// String names the object for messages: "view app.v".
func (o Object) String() string {
	return string(o.Kind) + " " + o.ID
}
