// Package duckdb is ferry's DuckDB connector: a destination (tables,
// copies through DuckDB's appender, change batches applied set-based,
// checkpoints kept in the same transaction as the rows) and a source
// (discovery, a primary-key range plan, keyset reads, reads by key for
// verify). DuckDB has no change stream, so it is never a CDC source.
//
// URLs, as for SQLite:
//
//	duckdb:///abs/path/file.duckdb   absolute path
//	duckdb:rel/file.duckdb           path relative to the working directory
//
// The driver is cgo with a large prebuilt library, so the connector is
// compiled only into binaries built with cgo and the duckdb build tag
// (docs/decisions/2026-12-07-duckdb-destination.md); other binaries
// register the scheme with an error that says how to get one that has it.
//
// A DuckDB file is written by one process at a time: DuckDB locks it, and
// a second process gets "another process has it open". Inside one process
// every connector on the same file shares one database handle.
package duckdb
