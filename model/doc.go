// Package model is ferry's canonical data model: the vocabulary every
// connector translates to and from. A source maps its tables, types, rows and
// changes into these types; a destination maps them back out. The engine only
// ever sees this model, never a database's own types.
//
// Values in a Row use one Go representation per Kind (see Kind's doc), so a
// value read from SQLite and the same value read from PostgreSQL compare and
// hash equal.
package model
