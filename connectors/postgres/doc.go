// Package postgres is ferry's PostgreSQL connector: a source (discovery, a
// plan of CTID block ranges, a snapshot-consistent parallel copy, change
// data capture through logical replication with pgoutput) and a destination
// (tables from the canonical schema or PostgreSQL's own types, COPY, set-based
// upserts and deletes, checkpoints in the same transaction as the data).
//
// # Files
//
// One Conn serves both roles; it holds what they share (the URL, the pool,
// the type cache) and each half keeps its own state, sourceState and
// destinationState. The files say which half they serve:
//
//	postgres.go               Open, URL options, registration, session settings, quoting
//	version.go                supported server versions, when the copy uses key ranges
//	errors.go                 driver errors to ferry's (classify, lost connections)
//	raw.go                    the pass-through format both halves agree on (wireColumns)
//	codec_types.go            catalog types to canonical ones (typeCache)
//	codec_decode*.go          PostgreSQL's text output to canonical values (arrays apart)
//	codec_encode.go           canonical values to PostgreSQL's input text, COPY text escaping
//	codec_binary_*.go         the binary forms the copy reads and writes
//	source.go                 the source's state, Ack, positions, lag
//	source_discover.go        Tables: tables, columns, keys, indexes from the catalog
//	source_plan.go            Plan and Preflight: CTID block ranges, partition bounds
//	source_keyrange.go        key-range partitions and their reads, before PostgreSQL 14
//	source_snapshot.go        the exported snapshot partitions are read at
//	source_slot.go            slot and publication: checks, creation, DropFlow
//	source_slotwait.go        what a slot's creation waits for, reported while it waits
//	source_slothealth.go      a slot lost, dropped or near max_slot_wal_keep_size (Retention)
//	source_read.go            ReadPartition (decoded rows)
//	source_raw.go             ReadPartitionRaw (COPY binary tuples)
//	source_stream.go          StreamChanges: replication sessions, reconnects, status, heartbeat
//	source_changes.go         a transaction's pgoutput messages to change batches
//	source_pgoutput.go        the pgoutput parser
//	source_relations.go       relation messages, schema changes by column name
//	source_ddl.go             the DDL log on the source: event trigger, _ferry.ddl_log, DropFlow's cleanup
//	source_ddl_stream.go      schema changes by the DDL log: renames, drops, added columns' values, types
//	source_ddl_tables.go      tables created (NewTables) and dropped at the source, by the DDL log
//	source_moved.go           values of rows an update moved to a new key
//	source_generated.go       generated columns computed for changed rows
//	source_definitions.go     defaults, identity, sequences, domains, composites, partitions, the functions they call
//	source_sequences.go       Sequences: values, owners from pg_depend (the catalog query both halves use)
//	source_objects.go         Objects: functions, views, materialized views, triggers and what each depends on
//	source_partitions.go      Partitionings: the partitions of partitioned tables as they are now
//	destination.go            the destination's state, _ferry's tables, the catalog cache, EmptyTables
//	destination_ddl.go        CreateTables, CheckTables: column types, enums, existing tables
//	destination_definitions.go the source's definitions in CREATE TABLE; what is made otherwise, with its fix
//	destination_functions.go  the functions a table's definition calls, created before the table
//	destination_partitions.go partitioned tables created partitioned; unique indexes per partition at cutover
//	destination_keys.go       primary keys deferred during the copy (CreateTablesForCopy)
//	destination_write.go      WriteRows: COPY, upsert of rows already there
//	destination_raw.go        AcceptsRaw and pass-through batches
//	destination_apply.go      ApplyChanges: set-based deletes, upserts, updates
//	destination_existing.go   tables that exist already: replica sessions, triggers and foreign keys, UniqueTables
//	destination_applyrows.go  changes of tables without a key, by whole row (Declare)
//	destination_checkpoint.go checkpoints in _ferry.checkpoints
//	destination_finish.go     FinishTable: the deferred key, secondary indexes, ANALYZE
//	destination_alter.go      AlterTable
//	destination_sequences.go  SetSequences: setval, an owned sequence found by its column
//	destination_objects.go    BuildObjects, CheckObjects: objects at cutover, in dependency order, in one transaction
//	destination_newpartitions.go BuildPartitions: partitions the source gained, rows moved out of DEFAULT partitions
//
// # URL
//
//	postgres://user:password@host:5432/database?sslmode=disable   (or postgresql://)
//	host=host port=5432 user=user password='pass word' dbname=database sslmode=disable
//
// The second, libpq's keyword/value form, reaches Open as the postgres URL
// that means the same (connector.ParseURL); its password needs no
// percent-encoding.
//
// Parameters ferry reads itself (the others go to pgx: sslmode, sslrootcert,
// sslcert, sslkey, connect_timeout, ...; the pool and the replication
// connection share pgx's one parsed TLS configuration, and tls.go says which
// parameter fixes a failed handshake):
//
//	slot=name           use this replication slot instead of ferry_<flow>; if
//	                    it exists it is used as it is (T0 is its confirmed
//	                    position, the copy reads current data) and never dropped
//	publication=name    use this publication instead of ferry_<flow>; it must
//	                    publish every selected table; never dropped
//	snapshot=false      do not read the copy through an exported snapshot
//	heartbeat=10s       how often an idle change stream writes a heartbeat
//	reconnect_timeout=2m  how long a lost replication connection is retried
//
// Every session sets TimeZone UTC, DateStyle ISO, IntervalStyle iso_8601,
// extra_float_digits 3, bytea_output hex and lc_monetary C, so values are
// read and written in one exact text form.
//
// # Types
//
//	PostgreSQL                          canonical              notes
//	smallint, integer, bigint           int16, int32, int64
//	oid                                 int64
//	numeric(p,s), numeric               decimal(p,s), decimal  NaN and ±Infinity kept as text
//	money                               decimal                read and written with lc_monetary C (2 fractional digits):
//	                                                           exact between PostgreSQL servers
//	real, double precision              float32, float64       NaN, ±Infinity, -0 kept
//	boolean                             bool
//	text, varchar(n), char(n), name     text (Length n)        char(n) keeps its padding
//	bytea                               bytes
//	json, jsonb                         json                   Native says which
//	uuid                                uuid
//	date                                date                   BC dates kept; ±infinity as model.Infinity
//	time, timetz                        time, timetz           24:00:00 kept
//	timestamp, timestamptz              timestamp, timestamptz microseconds, BC kept; ±infinity as model.Infinity
//	interval                            interval               months, days and microseconds, exactly
//	inet, cidr, macaddr                 inet, cidr, macaddr    PostgreSQL's text form
//	enum types                          enum                   labels in EnumValues; Native is the qualified type name
//	domains                             their base type        a PostgreSQL destination creates the domain
//	arrays of the above                 array                  any number of dimensions (nested []any);
//	                                                           lower bounds other than 1 are an error
//	anything else (bit strings, ranges, text                   through the type's output and input functions,
//	geometric types, tsvector, xml,                            exact between PostgreSQL servers; Native
//	composite and extension types such                         keeps the type and TextForm is set: a
//	as hstore and citext, and arrays                           destination without the type holds text
//	of them)                                                   and the flow warns per column
//	pseudo-types                        refused                at plan time, naming table and column
//
// Infinite dates and timestamps ('infinity', '-infinity') decode to
// model.PosInfinity and model.NegInfinity, never to a time.Time, so no
// destination can store them as a real date. Multi-dimensional arrays
// decode to nested []any; arrays whose dimensions do not start at 1
// ('[0:1]={1,2}') are refused at the row.
//
// Type.Native is format_type()'s spelling (qualified for enums). A
// PostgreSQL destination creates a column with Native when it is
// format_type()'s spelling of a type this server has and that type holds the
// same canonical kind (so varchar(20), numeric(38,10), timestamp(3), point
// or an extension type survive a PG to PG copy; another engine's spelling
// that PostgreSQL happens to parse, such as MySQL's char(10), is not used:
// MySQL's CHAR strips trailing spaces where PostgreSQL's pads them), and
// otherwise with the canonical kind's type: int16 smallint,
// int32 integer, int64 bigint, decimal(p,s) numeric(p,s), float32 real,
// float64 double precision, text(n) varchar(n), text, bytes bytea, json
// jsonb, uuid, date, time, timetz, timestamp, timestamptz, interval, inet,
// cidr, macaddr, arrays as element[], and enum as text (or, when Native
// names an enum and EnumValues is set, that enum type, created or completed
// at the destination).
//
// From a PostgreSQL source, a table is created with the source's column
// definitions (defaults, identity and serial columns and their sequences,
// domains, composite types, generated columns; destination_definitions.go).
// Generated columns are computed by the destination (ferry writes them only
// into a table where they are plain: another engine's, or one whose
// expression calls a function the destination lacks). pgoutput does not
// send them, so during CDC ferry computes each changed
// row's generated values by evaluating the column's expression on the
// source over the row's other values (generation expressions are
// immutable); a generated value that depends on an unchanged TOAST value is
// left unchanged.
//
// # Plan and reading
//
// Every table is split into ranges of heap blocks (CTID ranges, read with TID
// range scans), sized from pg_class statistics to about --partition-rows
// rows, and to at most --partition-rows × 256 bytes of the table's size with
// TOAST (64 MiB by default), so a table of large values is split as well:
// no index needed, the same for tables with and without a primary
// key, and no skew from key distribution. A partitioned table is one table
// whose partitions are its leaf partitions' block ranges; its rows are read
// from each leaf. A partition's cursor is the ctid of its last row read;
// reads are in physical order (sequential scans without synchronization or
// parallel workers), which ReadPartition checks.
//
// Which data the copy reads: every partition Plan makes names the snapshot
// it is to be read at (model.Partition.Snapshot), and a reader imports it
// while the Conn that planned holds it open; otherwise it reads current
// data.
//
//   - ferry sync with CDC, first run of the flow: Plan creates the
//     publication, then the slot with EXPORT_SNAPSHOT, and keeps the
//     replication connection idle so the snapshot lives. Every partition
//     reader imports it: the copy is exactly the state at T0 (the slot's
//     consistent point), and Plan.SnapshotConsistent is set. StreamChanges
//     (the copy is over), DropFlow and Close release it.
//   - a resumed run (a new process: Plan is not called again), scale-out
//     workers, slot= naming an existing slot, snapshot=false: the snapshot is
//     gone or was never there, so partitions read current data. T0 is older
//     than what they read, and the replay of every change after T0 converges
//     each row, since every destination write is idempotent.
//   - without CDC (--mode snapshot, verify, plan): partitions share a
//     snapshot exported by a plain transaction, so the copy is consistent
//     across tables; it ends with the connector or the next plan.
//
// # Change data capture
//
// The flow's slot and publication are named ferry_<flow> (made a valid
// identifier, with a hash suffix when that changed the name); the engine
// gives the stream the flow's name (StreamOptions.Flow) so a resumed run
// finds them.
// The publication publishes through partition roots. Preconditions are
// checked by Preflight, before the engine touches the destination (and
// again by Plan), each with its fix: SELECT on every table and types ferry
// can copy; for CDC wal_level logical, a role that may replicate (the
// REPLICATION attribute, superuser, or membership in rds_replication or
// azure_pg_admin), a replica identity that carries the primary key (or
// FULL), the slot name free (or the named slot not in use), a free
// replication slot, and ownership of the tables and CREATE on the database
// (to create the publication) or a publication= that publishes them. The
// advice for wal_level and the privilege fits the managed service the
// server looks like, told by its roles and settings (source_service.go).
//
// Positions are LSNs ("0/16B3748"). A transaction becomes one ChangeBatch at
// its commit's end LSN, a safe resume point; a transaction of more than
// 10000 changes or 16 MB of them is emitted in parts whose position is the
// previous commit, so a crash inside it replays it whole. The stream stops
// reading while 16 MB of changes wait for the engine. Updates carry the old key when the
// server sends it (key changed, or REPLICA IDENTITY FULL); an unchanged TOAST
// value is model.Unchanged (or the old row's value under REPLICA IDENTITY
// FULL), never NULL. In an update that changed the key no destination row
// holds the value, so ferry reads it from the source's current row under
// the new key (replaying the row's later changes converges it; a row gone
// since becomes a delete of the old key).
//
// Schema changes are followed by ferry's DDL log when the role may create
// event triggers (source_ddl.go): the event trigger ferry_ddl_log logs a
// table's live columns (attnum, type, attmissingval, volatile default)
// into _ferry.ddl_log after each ALTER TABLE and CREATE TABLE (AS), and
// ferry_ddl_drop each table dropped; the publication carries the log. A
// table created that StreamOptions.NewTables selects is discovered by oid
// and emitted with SchemaChange.Created, one of the stream dropped with
// Dropped (source_ddl_tables.go). The stream (source_ddl_stream.go)
// composes the log's entries from the one showing the columns it knows, by
// attnum: a kept attnum under a new name is a rename (SchemaChange.Renamed),
// a new attnum an added column (with Filled, the value existing rows got,
// decoded as the column's values are), a gone one a drop, a new type a type
// change. A column whose values the server computed per row (volatile
// default, identity, generated) stops the flow: the table must be copied
// again. A relation message the log does not explain stops it too. Without
// the log the relation message is compared by column name: an added
// nullable column, a dropped or retyped one pass; an added column with a
// default, and a column gone while another appeared (a rename or a drop
// and an add: names cannot tell), stop the flow with an error saying what
// to do. A TRUNCATE is a model.OpTruncate change per flow table it names,
// in stream order, starting a batch of its own.
//
// Standby status updates report as flushed only what the engine
// acknowledged (Ack), every 5 s and whenever the server asks, also while the
// engine applies earlier batches. An idle stream writes a heartbeat
// (pg_logical_emit_message in a transaction) every heartbeat interval and
// once at the start, so the slot advances and --until caught-up ends.
// HeadPosition is pg_current_wal_insert_lsn(). A lost replication connection
// is retried with exponential backoff (up to reconnect_timeout) from the
// last acknowledged position; transactions received again are emitted again
// (harmless: writes are idempotent), at positions that never go backwards.
//
// A table without a primary key needs REPLICA IDENTITY FULL: its update
// and delete changes then carry the whole old row as Change.Key (in column
// order), and the applier (Declare: FullRows) applies TableChanges.RowChanges
// in order, each to one row equal to the old one, found by ctid.
//
// LagBytes (connector.LagMeter) is pg_current_wal_insert_lsn() minus a
// position, for the engine's lag reporting.
//
// DropFlow (ferry drop, ferry sync --restart) drops the flow's slot and
// publication when ferry created them. Plan and StreamChanges log a warning
// for every other inactive ferry slot, with the WAL it retains and how to
// drop it.
//
// # Destination
//
// CreateTables creates schemas and tables (with the primary key, named as
// the source names it when the name is free) and ferry's _ferry schema;
// existing tables must have every column and the same key.
// CreateTablesForCopy (connector.KeyDeferrer), which the engine uses while
// the copy is still to run, creates them without the primary key (its
// columns NOT NULL) and records each in _ferry.deferred_keys (OID, name,
// key columns) in the same transaction, as pg_dump and pgcopydb load
// theirs. FinishTable, in one transaction holding the table's ACCESS
// EXCLUSIVE lock, adds the key of a table still recorded and deletes the
// record. Rows the copy wrote twice (a partition read again outside the
// plan's snapshot met a row a concurrent update moved ahead of its cursor;
// a batch written again after a lost commit confirmation) make the key fail
// with a unique violation: all but one row per key (the one at the highest
// ctid) are then deleted, a warning says how many and why, and the key is
// added. Every copy was read at or after T0, and change data capture from T0
// starts only after the finish, so the row converges whichever copy is kept
// (docs/decisions/2026-12-04-deferred-primary-key.md). Changes are never
// applied to a table without its key: the applier refuses it, saying
// whether its copy is unfinished, and CreateTables (a flow without copy)
// refuses a table whose key is still deferred. FinishTable then builds the
// source's secondary indexes (pg_get_indexdef's definition; unique ones
// without UNIQUE, since changes are applied in parallel across keys and two
// rows may hold a value for a moment; each index the table lacks by name)
// and runs ANALYZE; every step is skipped when done, so finishing twice is
// harmless. The engine finishes --parallel tables at once, after the copy
// and before change data capture starts. Foreign keys and check constraints
// are not copied.
//
// WriteRows sends the batch with COPY FROM STDIN and stores its checkpoint in
// the same transaction. Into a table that has its key (one that existed
// before the flow), rows already there (a retried batch, a resumed
// partition) make COPY fail on the key; the batch is then written again as
// INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE, and so are the
// partition's next batches. A table without a primary key relies on the
// checkpoint alone: a partition resumes after its last committed batch, so
// no row is written twice.
//
// # Pass-through
//
// Between two PostgreSQL servers rows are not decoded: for each table the
// source offers a raw format (connector.RawReader) listing its columns and
// their types as their binary form goes (domains as their base type, enums
// by qualified name, arrays by element type), and the destination accepts it
// (connector.RawWriter) when the table there has exactly those columns with
// those types, none generated. The engine negotiates it per table at the
// start of the copy; a renamed or mapped column, another type at the
// destination (an existing table), a composite, extension or other
// user-defined type (or an array of one), and every other destination keep
// the decoded path. The source reads COPY (SELECT ctid, columns FROM ONLY
// ... WHERE ctid range) TO STDOUT (FORMAT binary), cuts the stream into
// tuples, takes each tuple's ctid off (the last one is the batch's cursor,
// checked to increase as in ReadPartition) and emits batches of
// --batch-rows tuples or 4 MB; the destination sends them to COPY FROM STDIN
// (FORMAT binary) with the checkpoint in the same transaction, after
// writing its own element type OID into array values (enum and domain OIDs
// differ between servers). Into a table that has its key, rows already
// there (23505) are copied into a temporary staging table and upserted by
// key from it.
//
// ApplyChanges applies a batch in one transaction with its checkpoint: per
// table one DELETE ... USING unnest(keys), one INSERT ... SELECT FROM
// unnest(...) ON CONFLICT (key) DO UPDATE for whole rows, and for rows with
// unchanged values one UPDATE ... FROM unnest(...) per set of present
// columns, which must find every row (an unchanged value cannot be
// inserted). Values travel as text arrays and are cast to each column's type
// by the server, with its own input functions; a row of 1 MiB or more goes
// alone, FROM (VALUES ($1::text, ...)) with its values as plain parameters
// (an array literal would copy a large value once more, escaped). A batch
// of up to 1,000 changes whose statements' results nothing reads (no
// unchanged values, no large rows, no rows by whole row, no deferrable
// constraints) goes as one pipeline without BEGIN and COMMIT: the server
// runs it as one implicit transaction committed at its Sync, in one round
// trip (applyPipelined). Its statements are prepared on the writer's
// session the first time their text is sent (a table's delete and upsert,
// the checkpoint: a few per table), so the server parses and plans them
// once; a session that loses them (a pooler in transaction mode) sends
// them unprepared from then on. Replaying a batch leaves the same rows.
// AlterTable follows a source's schema change in one transaction
// (connector.PlanAlter decides the steps; docs/connectors.md). Every
// connection reads the server's messages through a 128 KB buffer
// (bufferedFrontend): the driver's own reads are 8 KB each. The
// replication connection reads through a readPacer too (source_pace.go):
// while the changes it gets were committed over a second before the
// server sent them (a backlog), a read after one that found little waits
// a millisecond, and the session hands whole transactions to the engine
// in groups (replSession.send); a stream that follows the server is read
// as it comes, but a read that found little right after another waits a
// millisecond before the next (a burst of live transactions trickling in a
// change a packet). To a server close by (a round trip under 250 us at
// connect) the replication connection asks for a 32 KB receive buffer
// (shrinkNear): the walsender's writes then queue and leave together
// instead of one packet a change.
package postgres
