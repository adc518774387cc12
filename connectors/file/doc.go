// Package file is ferry's file connector: a directory of JSON Lines, CSV or
// Parquet files, one per table, read as a source and written as a
// destination. Files have no change stream to read; with changes=files a
// full flow's changes are written as change files (changes.go), and without
// it a flow into files is a snapshot.
//
//	file:///abs/dir?format=jsonl   (the default)
//	file:///abs/dir?format=csv
//	file:///abs/dir?format=parquet
//	file:///abs/dir?format=parquet&changes=files
//
// # Layout of a directory
//
//	shop.orders.jsonl              the table shop.orders (orders.jsonl without a schema)
//	shop.orders.schema.json        its schema sidecar: the model.Table as JSON
//	shop.orders.jsonl.part-shop%2Eorders%2F0003
//	                               rows of partition "shop.orders/0003" being copied
//	.ferry/<flow>/<key>.json       checkpoints of a flow, one file per key
//	.ferry/<flow>/replace.journal  an interrupted ReplaceCheckpoints, replayed on load
//	.shop.orders.jsonl.finish      an interrupted FinishTable, completed on the next call
//	shop.orders.changes/000000000007-1.jsonl
//	                               changes of the 7th change batch (changes=files)
//	.<name>.tmp-<random>           a file being written, renamed into place when complete
//
// Names starting with a dot are never tables. In a table's file name the
// schema and the table are percent-encoded: '%', '/', '\\', control bytes
// (NUL included), DEL and a leading '.' become %XX; so does every '.' of the
// schema (and of a table without a schema), so that the first literal dot
// separates schema from table. Unicode is kept as it is. A file named by hand
// reads as model.ParseNamespace would read its name: "my.data.v2.jsonl" is
// the table "data.v2" of schema "my". Part files use the same encoding for
// the partition ID, with every dot encoded, and checkpoint files for the flow
// and the key.
//
// # Values
//
// JSON Lines: one object per line, keys are the column names in column order,
// values as model.ToJSON gives them (numbers where exact, JSON documents
// embedded, everything else in its text form), NULL is null. A key missing
// from a line reads as NULL; a key that is not a column is an error.
//
// CSV: RFC 4180 with a header row of column names and values in
// model.FormatText form. NULL is an empty unquoted field and the empty string
// is "" (quoted), a distinction encoding/csv cannot read, so the connector
// has its own reader and writer. Fields holding a comma, a quote, CR or LF
// are quoted, with quotes doubled; records end with "\n", and "\r\n" is
// accepted on read. A header names columns in any order; a column the header
// lacks is NULL.
//
// Parquet: typed columns in column order (parquet_types.go maps each kind;
// docs/connectors.md has the table), nullable columns OPTIONAL, arrays as
// LISTs with OPTIONAL elements. Decimals with a precision up to 38 are
// DECIMAL with the column's scale, so they read back spelled with that
// scale; an unconstrained decimal is its exact text, since a DECIMAL column
// has one scale and such values each have theirs (and may be NaN). Infinite
// dates and timestamps are ±MaxInt32 days and ±MaxInt64 microseconds, the
// values DuckDB writes for its own infinities, so both read them back as
// infinity. A value a column cannot hold exactly (a sub-microsecond time, a
// decimal past its scale, a multi-dimensional array) fails its batch.
//
// Without a sidecar, a JSON Lines file's columns are the keys of its first
// 1000 rows, typed from their values (see inferJSONL), and a CSV file's are
// its header's names, all text.
//
// # Writing without duplicates
//
// Each partition is appended to its own part file; every batch is fsynced
// before its checkpoint is written, atomically, with the part file's length:
// the checkpoint file is the commit point. LoadCheckpoints cuts each part
// file back to its checkpoint's length and deletes part files that have none,
// so rows written after the last checkpoint are gone and the partition
// resumes from that checkpoint without writing any row twice. Within one
// run, a failed write's leftover is cut before the next write, and a batch
// sent again (same cursor, after the last checkpoint) replaces its first
// copy. FinishTable
// concatenates the part files in partition order into the table file through
// a temporary file and a rename, records which parts it used, then deletes
// them. One flow at a time may write to a directory; part files named by
// another flow's checkpoints are left alone, part files named by none are
// removed by any flow's LoadCheckpoints or DropCheckpoints.
//
// A Parquet file cannot be appended to or cut back, so for Parquet the same
// part file holds a run of segments, each an 8-byte length and a complete
// Parquet file of one batch (parquet_write.go). The checkpoint's length then
// always falls between segments, and the truncation on resume leaves exactly
// the checkpointed batches: the jsonl/csv rule, unchanged, keeps every row
// once. FinishTable copies the segments' rows into the table's Parquet file,
// one row group per partition, through the same temporary file and rename,
// so a table's file is only ever seen complete. (One Parquet file per
// partition would need a second naming scheme for tables, which the source
// side and every reader of these directories would have to learn; a row
// group per partition keeps the unit readers use to split work.) A source
// reads the file by row number: a partition is a run of whole row groups,
// a cursor the next row.
package file
