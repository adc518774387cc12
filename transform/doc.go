// Package transform reshapes rows on their way from the source to the
// destination, per table, identically on the copy and on the change stream:
// it excludes, renames and masks columns, appends computed columns and
// filters rows. The engine asks Rules.For for each source table once (and
// again after a schema change); the *Table it gets gives the destination's
// shape (Output) and turns copy rows (Row) and changes (Change) from the
// source's shape into it. Everything a rule can get wrong is refused in
// Parse (syntax) or For (against the table's columns) as a configuration
// error, exit code 2, before anything is written.
//
// # Rules
//
// A rule names its table by a glob, matched as --tables matches (a pattern
// with a dot matches "schema.table", one without the table name in any
// schema), and a column by its exact name in the source table; the last dot
// of "TABLE.COLUMN" separates them, so a column name cannot hold a dot. A
// table matched by several rules gets them all; a column given two
// different renames or masks, or excluded and also renamed or masked, is
// refused.
//
//   - exclude TABLE.COLUMN: the column is left out.
//   - rename TABLE.COLUMN=NEW: the column is called NEW at the destination;
//     the primary key and indexes follow it. A renamed column keeps its type
//     and definitions (default, identity, collation).
//   - mask TABLE.COLUMN=hash: the value becomes the first 32 hex digits (128
//     bits) of HMAC-SHA256(salt, text), text being the value's text form
//     (model.FormatText; a decimal normalized first, so 1.50 and 1.5 hash
//     alike). A text value hashes its own UTF-8 bytes, so a hash can be
//     recomputed elsewhere (PostgreSQL with pgcrypto: left(encode(hmac(email,
//     salt, 'sha256'), 'hex'), 32)) to join on it. The column becomes text. hash
//     needs a salt: without one an email's hash is found by hashing
//     candidate emails.
//   - mask TABLE.COLUMN=lastN (N >= 1, last4): the value's text form with
//     every character (rune) but the last N replaced by '*'; a value of N
//     characters or fewer is kept whole. The column becomes text.
//   - mask TABLE.COLUMN=redact: a text column's values become "[redacted]";
//     a column of any other type (a uuid, an enum or JSON could not hold
//     that text) becomes NULL, and nullable.
//   - compute TABLE.COLUMN = CEL: a new nullable column appended after the
//     table's columns, its type the expression's (int: int64, double:
//     float64, string: text, bool, bytes, timestamp: timestamptz).
//   - filter TABLE: CEL: only rows for which the expression is true reach the
//     destination; a NULL result leaves the row out, as SQL's WHERE does.
//     Several filters matching one table must all pass.
//
// NULL stays NULL under every mask. A value the source did not send
// (model.Unchanged) stays Unchanged under a mask. A changed or new column
// loses what only the source engine understands (its native type, user
// type, collation, default, generated expression, identity); an untouched
// column keeps them. An index on an excluded or masked column is dropped,
// and so is partitioning by one; a generated column whose expression reads
// one becomes a plain column holding the copied values. Index definitions,
// partition keys and generated expressions follow renames.
//
// # Keys
//
// A primary key column may be renamed, or masked with hash: a hash keeps
// distinct keys distinct and the same key the same, so changes still fold
// and apply by key. Excluding a key column, or masking it otherwise (which
// would merge keys), is refused. A table without a primary key has no such
// limit.
//
// # CEL
//
// Expressions (cel.dev/cel-go, with its strings, math and encoders
// extensions: email.split('@')[1], math.greatest(a, b), base64.encode(b))
// see the source table's columns by their
// source names and values, before any mask, excluded ones included (not
// the computed columns); a column whose name is not a CEL
// identifier ("order-id", "in") cannot be referenced. Types: int16/32/64 are
// int; float32/64 double; decimal double (its exact value rounded to the
// nearest float64: compare decimals with a margin, or keep them out of
// filters where a cent matters); text, json, uuid, enum, inet, cidr and
// macaddr string; bool; bytes; date, timestamp and timestamptz timestamp
// (a timestamp without zone as if in UTC; an infinite one is an error when
// read); time is a duration; anything else dyn (interval and timetz as their
// text form, arrays as lists). A nullable column may be null: `x == null`
// and `x > 5` both type-check, and `x > 5` on a NULL fails at run time with
// an error naming the table, the expression and the row's key, which stops
// the flow; guard with `x != null && x > 5`. Expressions are compiled and
// type-checked once, in For: one that does not compile, a filter that is
// not bool, or a computed column of a type ferry cannot store is refused.
//
// # Filters and the change stream
//
// A change of a table with a primary key carries its new row and, for a
// delete or a key change, the old key, never the old row: an insert is kept
// when its row passes; an update whose new row passes is kept, and one
// whose new row fails becomes a delete of its key (the old key when the
// update changed it), since the row may have been in the filter before; a
// delete is always kept (deleting a row the destination never had is
// harmless). A table without a primary key whose changes carry the whole
// old row (model.Table.FullRowIdentity) is filtered on both rows: old and
// new pass, an update; only the old, a delete; only the new, an insert;
// neither, nothing; a delete is kept when the old row passes. A truncate
// passes untouched.
//
// A column the source may send as unchanged (model.Column.SentUnchanged:
// PostgreSQL TOAST without REPLICA IDENTITY FULL) has no value to read in
// such an update: an expression reading one is refused, and so is any
// filter on a table that has one, because an update moving a row into the
// filter writes a row the destination did not have, which would lack that
// column's value.
//
// A *Table is safe for concurrent use by the copy's workers.
package transform
