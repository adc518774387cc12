package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// Options shape the events of one destination.
type Options struct {
	// Prefix starts every topic or subject (PREFIX.schema.table).
	Prefix string
	// Template, when set, is a table's topic instead: {schema} and {table}
	// stand for its names. SchemaTopic, when set, receives schema changes.
	Template, SchemaTopic string
	// Flow names the flow, as source.name.
	Flow string
	// Plan tells the snapshots of one flow apart (a flow started over
	// sends its rows again, under new IDs).
	Plan string
	// Tombstones: a delete is followed by a message with its key and no
	// value, so a compacted topic forgets the key.
	Tombstones bool
	// Connector and Database are the source's kind ("postgresql",
	// "mysql"; "ferry" when empty) and database, as connector.SourceInfo.
	Connector, Database string
	// Now is the processing time (ts_ms); time.Now when nil.
	Now func() time.Time
}

// Message is one message to send: Subject is the topic or subject, Key
// the row's key as JSON (nil for a truncate or schema change), Value the
// envelope (nil for a tombstone), ID the stable ID for deduplication.
type Message struct {
	Subject    string
	Key, Value []byte
	ID         string
}

// Subject is the topic or subject of a table: PREFIX.schema.table, each
// part with the characters a NATS subject or Kafka topic cannot hold
// replaced by '_'.
func (o Options) Subject(ns model.Namespace) string {
	if o.Template != "" {
		s := o.Template
		if ns.Schema == "" {
			s = strings.ReplaceAll(s, "{schema}.", "")
		}
		// Two replacements, not a strings.Replacer built per message (most
		// of a Kafka event's cost); clean leaves no braces to match again.
		s = strings.ReplaceAll(s, "{schema}", clean(ns.Schema))
		return strings.ReplaceAll(s, "{table}", clean(ns.Table))
	}
	parts := []string{o.Prefix}
	if ns.Schema != "" {
		parts = append(parts, ns.Schema)
	}
	parts = append(parts, ns.Table)
	for i, p := range parts {
		parts[i] = clean(p)
	}
	return strings.Join(parts, ".")
}

// SchemaSubject is where schema changes go: PREFIX.__schema.
func (o Options) SchemaSubject() string {
	if o.SchemaTopic != "" {
		return o.SchemaTopic
	}
	return clean(o.Prefix) + ".__schema"
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

type envelope struct {
	Before orderedObject `json:"before"`
	After  orderedObject `json:"after"`
	Source source        `json:"source"`
	Op     string        `json:"op"`
	TsMs   int64         `json:"ts_ms"`
}

// source is Debezium's source block: db, schema (PostgreSQL), table, the
// position in the source's own terms (lsn for PostgreSQL; file, pos and
// gtid for MySQL), txId where the source gives it, and ferry's resume
// position as position.
type source struct {
	Version   string `json:"version"`
	Connector string `json:"connector"`
	Name      string `json:"name"`
	TsMs      int64  `json:"ts_ms"`
	Snapshot  string `json:"snapshot"`
	DB        string `json:"db"`
	Schema    string `json:"schema,omitempty"`
	Table     string `json:"table"`
	TxID      any    `json:"txId,omitempty"`
	LSN       *int64 `json:"lsn,omitempty"`
	File      string `json:"file,omitempty"`
	Pos       *int64 `json:"pos,omitempty"`
	GTID      string `json:"gtid,omitempty"`
	// Position is the source's position of the change's transaction
	// (an LSN, a binlog file:offset@GTID), ferry's resume point.
	Position string `json:"position,omitempty"`
}

// Version is source.version.
const Version = "ferry"

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) source(ns model.Namespace, pos model.Position, commit time.Time, txID string) source {
	s := source{Version: Version, Connector: o.Connector, Name: o.Flow, Snapshot: "false", DB: o.Database, Schema: ns.Schema, Table: ns.Table, Position: string(pos)}
	if s.Connector == "" {
		s.Connector = "ferry"
	}
	switch {
	case o.Connector == "mysql":
		// A MySQL table's schema is its database: Debezium's db.
		s.DB, s.Schema = ns.Schema, ""
	case s.DB == "":
		s.DB = ns.Schema // the database unknown (outside an engine)
	}
	if !commit.IsZero() {
		s.TsMs = commit.UnixMilli()
	}
	if txID != "" {
		if n, err := strconv.ParseInt(txID, 10, 64); err == nil {
			s.TxID = n
		} else {
			s.TxID = txID
		}
	}
	s.position(pos)
	return s
}

// position spreads ferry's position over Debezium's fields: PostgreSQL's
// "16/B374D848" is lsn as a number; MySQL's "binlog.000042:1234@0-1-42" is
// file, pos and gtid.
func (s *source) position(pos model.Position) {
	p := string(pos)
	if hi, lo, ok := strings.Cut(p, "/"); ok {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 == nil && err2 == nil {
			n := int64(h<<32 | l)
			s.LSN = &n
		}
		return
	}
	filePos, gtid, _ := strings.Cut(p, "@")
	if file, off, ok := strings.Cut(filePos, ":"); ok {
		if n, err := strconv.ParseInt(off, 10, 64); err == nil {
			s.File, s.Pos, s.GTID = file, &n, gtid
		}
	}
}

// Encode turns one event into its messages: one for an insert, update
// or truncate; a delete and its tombstone (Tombstones); for an update
// that changed the key, Debezium's delete, tombstone and create.
func (o Options) Encode(ev connector.Event) ([]Message, error) {
	if ev.Schema != nil {
		return o.schemaChange(ev)
	}
	t := ev.Table
	subj := o.Subject(t.Namespace)
	src := o.source(ev.Source, ev.Position, ev.CommitTime, ev.TxID)
	now := o.now().UnixMilli()
	switch ev.Op {
	case model.OpTruncate:
		env := envelope{Source: src, Op: "t", TsMs: now}
		v, err := env.encode()
		return []Message{{Subject: subj, Value: v, ID: ev.ID}}, err
	case model.OpInsert:
		if ev.Read {
			// A row of an incremental snapshot, as Debezium's.
			src.Snapshot = "incremental"
			return o.row(subj, t, nil, ev.Row, "r", src, now, ev.ID)
		}
		return o.row(subj, t, nil, ev.Row, "c", src, now, ev.ID)
	case model.OpDelete:
		return o.row(subj, t, keyRow(t, ev.Key), nil, "d", src, now, ev.ID)
	case model.OpUpdate:
		if ev.Key == nil {
			return o.row(subj, t, nil, ev.Row, "u", src, now, ev.ID)
		}
		del, err := o.row(subj, t, keyRow(t, ev.Key), nil, "d", src, now, ev.ID+".d")
		if err != nil {
			return nil, err
		}
		cre, err := o.row(subj, t, nil, ev.Row, "c", src, now, ev.ID)
		return append(del, cre...), err
	}
	return nil, fmt.Errorf("events: unknown change %s on %s", ev.Op, t.Namespace)
}

// Read is a snapshot row as Debezium's read event (op r, snapshot true).
func (o Options) Read(t *model.Table, row model.Row) (Message, error) {
	src := o.source(t.Namespace, "", time.Time{}, "")
	src.Snapshot = "true"
	key, err := o.key(t, row)
	if err != nil {
		return Message{}, err
	}
	after, err := fields(t, row)
	if err != nil {
		return Message{}, err
	}
	env := envelope{After: after, Source: src, Op: "r", TsMs: o.now().UnixMilli()}
	v, err := env.encode()
	return Message{Subject: o.Subject(t.Namespace), Key: key, Value: v, ID: o.Flow + "/r/" + o.Plan + "/" + t.Namespace.String() + "/" + string(key)}, err
}

// row encodes a row change: before is the key only (the default replica
// identity's old image), after the whole new row.
func (o Options) row(subj string, t *model.Table, before, after model.Row, op string, src source, now int64, id string) ([]Message, error) {
	img := after
	if img == nil {
		img = before
	}
	key, err := o.key(t, img)
	if err != nil {
		return nil, err
	}
	env := envelope{Source: src, Op: op, TsMs: now}
	if before != nil {
		if env.Before, err = fields(t, before); err != nil {
			return nil, err
		}
	}
	if after != nil {
		if env.After, err = fields(t, after); err != nil {
			return nil, err
		}
	}
	v, err := env.encode()
	if err != nil {
		return nil, fmt.Errorf("events: encode a change of %s: %w", t.Namespace, err)
	}
	out := []Message{{Subject: subj, Key: key, Value: v, ID: id}}
	if op == "d" && o.Tombstones {
		out = append(out, Message{Subject: subj, Key: key, ID: id + ".t"})
	}
	return out, nil
}

// keyRow spreads a key (in primary-key order) over a row of t's columns,
// the others nil. A key of every column is the whole old row already (a
// table without a primary key); FullRowIdentity alone says nothing, as a
// MySQL source with binlog_row_image=FULL marks every table so.
func keyRow(t *model.Table, key model.Row) model.Row {
	if len(key) == len(t.Columns) && len(t.PrimaryKey) != len(t.Columns) {
		return key
	}
	row := make(model.Row, len(t.Columns))
	for i, ki := range t.KeyIndexes() {
		if i < len(key) {
			row[ki] = key[i]
		}
	}
	return row
}

// key is the message key: the key columns as a JSON object (every column
// for a table without a primary key).
func (o Options) key(t *model.Table, row model.Row) ([]byte, error) {
	idx := t.KeyIndexes()
	if len(idx) == 0 {
		for i := range t.Columns {
			idx = append(idx, i)
		}
	}
	k := make(orderedObject, 0, len(idx))
	for _, i := range idx {
		var v any
		if i < len(row) {
			v = Value(t.Columns[i].Type, row[i])
		}
		k = append(k, field{t.Columns[i].Name, v})
	}
	return k.appendJSON(make([]byte, 0, 16*len(k)))
}

// fields is a row as a JSON object, its columns in the table's order (as
// Debezium writes them).
func fields(t *model.Table, row model.Row) (orderedObject, error) {
	if len(row) != len(t.Columns) {
		return nil, fmt.Errorf("events: a row of %d values for table %s of %d columns", len(row), t.Namespace, len(t.Columns))
	}
	m := make(orderedObject, len(t.Columns))
	for i, c := range t.Columns {
		if err := Check(c.Type, row[i]); err != nil {
			return nil, fmt.Errorf("events: table %s, column %s: %w", t.Namespace, c.Name, err)
		}
		m[i] = field{c.Name, Value(c.Type, row[i])}
	}
	return m, nil
}

// orderedObject is a JSON object whose fields keep their order (a key's
// columns in key order, so equal keys are equal bytes).
type orderedObject []field

type field struct {
	name string
	v    any
}

func (o orderedObject) MarshalJSON() ([]byte, error) { return o.appendJSON(nil) }
