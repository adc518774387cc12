package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// OpenApplier returns a change writer on its own connection.
func (c *Conn) OpenApplier(ctx context.Context) (connector.ChangeWriter, error) {
	if err := c.ensureMeta(ctx); err != nil {
		return nil, err
	}
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, c.classify(err, "open an applier")
	}
	if err := c.writingSession(ctx, conn); err != nil {
		conn.Release()
		return nil, err
	}
	return &changeWriter{c: c, conn: conn}, nil
}

type changeWriter struct {
	c    *Conn
	conn *pgxpool.Conn
	// span is the destination transaction kept open across the parts of a
	// source transaction (model.ApplyBatch.Continues).
	span pgx.Tx
}

// Close rolls back a transaction left open by parts whose end never came:
// a reader never sees part of a source transaction.
func (w *changeWriter) Close() error {
	if w.span != nil {
		w.span.Rollback(context.Background()) //nolint:errcheck // the connection may be gone; its transaction then is too
		w.span = nil
	}
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
	return nil
}

// ApplyChanges applies the batch and its checkpoint in one transaction. Per
// table: deletes by key (missing rows are fine), upserts of whole rows with
// INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE, and rows with
// unchanged (TOAST) values as UPDATEs of the other columns only. Each is
// one statement for the whole table's share, whatever its size; replaying
// the batch leaves the same rows. A part of a source transaction
// (b.Continues) leaves its transaction open for the next batch.
func (w *changeWriter) ApplyChanges(ctx context.Context, b *model.ApplyBatch) error {
	if b == nil {
		return nil
	}
	if w.span == nil && !b.Continues {
		if b.Len() == 0 && b.Checkpoint == nil {
			return nil
		}
		if b.Len() <= pipelineMaxChanges {
			if sent, err := w.applyPipelined(ctx, b); sent {
				return err
			}
		}
		return w.c.inTx(ctx, w.conn.Conn(), func(tx pgx.Tx) error { return w.apply(ctx, tx, b) }, "apply changes")
	}
	const where = "apply changes of a source transaction in parts"
	if w.span == nil {
		tx, err := w.conn.Conn().Begin(ctx)
		if err != nil {
			return w.c.classify(err, where)
		}
		w.span = tx
	}
	tx := w.span
	if err := w.apply(ctx, tx, b); err != nil {
		w.span = nil
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // reporting err
		return w.c.txError(err, where)
	}
	if b.Continues {
		return nil
	}
	w.span = nil
	if err := tx.Commit(ctx); err != nil {
		return w.c.classify(err, where)
	}
	return nil
}

// apply writes the batch's changes and its checkpoint in tx, a statement
// at a time.
func (w *changeWriter) apply(ctx context.Context, tx pgx.Tx, b *model.ApplyBatch) error {
	if err := w.deferConstraints(ctx, tx, b); err != nil {
		return err
	}
	for _, tc := range b.Tables {
		if tc == nil || tc.Table == nil {
			return fmt.Errorf("changes without a table")
		}
		if err := w.applyTable(ctx, tx, nil, tc); err != nil {
			return tableError(tc.Table.Namespace, err)
		}
	}
	for _, cp := range b.Checkpoints() {
		if err := saveCheckpoint(ctx, tx, cp); err != nil {
			return err
		}
	}
	return nil
}

// pipelineMaxChanges is the largest share sent as one pipeline. A share of
// a batch under a steady load is a few hundred changes, and its round trips
// were most of its apply time on a busy machine (bench/pg-cdc.sh: about
// eight in a row; the subscriber it was compared with applies in-process).
// A share of a backlog's batch (--apply-batch 10,000 over the writers) is
// bound by the server's work instead, and went no faster pipelined
// (bench/pg-mixed.sh: the drain measured 1.53-1.58x the subscriber with
// every share pipelined, 1.85-1.96x before): it keeps the statement at a
// time path.
const pipelineMaxChanges = 1000

// applyPipelined sends a batch whose every statement can be queued (no
// rows with unchanged values, no large rows, no tables applied row by row,
// no deferrable constraints) as one pipeline without BEGIN and COMMIT: the
// server runs the statements before a Sync in one implicit transaction,
// committed at the Sync, so the batch and its checkpoint still commit
// together, in one round trip instead of three. sent is false when the
// batch needs a transaction of its own (nothing was sent).
func (w *changeWriter) applyPipelined(ctx context.Context, b *model.ApplyBatch) (sent bool, err error) {
	const where = "apply changes"
	for _, tc := range b.Tables {
		if tc == nil || tc.Table == nil || len(tc.RowChanges) > 0 {
			return false, nil
		}
		dt, err := w.c.destTable(ctx, tc.Table.Namespace)
		if err != nil || dt.deferrable {
			return false, nil // the transaction's path says what is wrong
		}
	}
	p := &pipeline{}
	for _, tc := range b.Tables {
		if err := w.applyTable(ctx, nil, p, tc); err != nil {
			if errors.Is(err, errNeedsTx) {
				return false, nil
			}
			return true, w.c.txError(tableError(tc.Table.Namespace, err), where)
		}
	}
	for _, cp := range b.Checkpoints() {
		p.addCheckpoint(cp)
	}
	conn := w.conn.Conn().PgConn()
	prep := sessionStmts(conn)
	err = p.send(ctx, conn, prep)
	if sqlState(err) == "26000" && !prep.off {
		// A prepared statement is gone: a pooler in transaction mode
		// gave this session another server connection. The pipeline's
		// transaction ended at the error; it goes again unprepared, as
		// every later one on this session.
		*prep = preparedStmts{off: true}
		err = p.send(ctx, conn, prep)
	}
	if err != nil {
		var named *pipelineError
		if errors.As(err, &named) {
			return true, w.c.txError(named.err, where)
		}
		return true, w.c.classify(err, where)
	}
	return true, nil
}

// errNeedsTx: a statement must run on its own in a transaction (its
// result is read), which a held pipeline (applyPipelined) does not have.
var errNeedsTx = errors.New("the batch needs a transaction")

// tableError names the table a statement of failed (or says the row has
// no partition there).
func tableError(ns model.Namespace, err error) error {
	if np := noPartitionError(ns, err); np != nil {
		return np
	}
	return fmt.Errorf("table %s: %w", ns, err)
}

// pipeline holds statements whose results nothing reads until
// applyPipelined sends them together: one round trip (a single Sync)
// instead of one each. The server runs them in order, in one implicit
// transaction, and stops at the first error. A statement whose result is
// read (a row count checked, rows looked up, a large row sent alone) asks
// for a transaction instead (needTx), and nothing is sent.
type pipeline struct {
	stmts []queued
}

// queued is a statement of a pipeline with its text parameters and what
// to say when it fails.
type queued struct {
	sql    string
	params [][]byte
	what   func(error) error // its error as a direct call would have said it
	// planEach: the statement joins its rows to the table, and its best
	// plan depends on their number and the table's size: it goes
	// unprepared, planned for the values it carries.
	planEach bool
}

// addCheckpoint queues saving cp.
func (p *pipeline) addCheckpoint(cp *model.Checkpoint) {
	p.add(checkpointSQL, [][]byte{[]byte(cp.Flow), []byte(cp.Key), []byte(cp.Value)}, nil, func(err error) error {
		return fmt.Errorf("save checkpoint %s of flow %s: %w", cp.Key, cp.Flow, err)
	}, false)
}

// add queues a statement with text parameters; table (nil for none) and
// what name it in an error; planEach sends it unprepared (queued.planEach).
func (p *pipeline) add(sql string, params [][]byte, table *model.Namespace, what func(error) error, planEach bool) {
	p.stmts = append(p.stmts, queued{sql: sql, params: params, planEach: planEach, what: func(err error) error {
		err = what(err)
		if table != nil {
			err = tableError(*table, err)
		}
		return err
	}})
}

// pipelineError is a queued statement's error, already named by send.
type pipelineError struct{ err error }

func (e *pipelineError) Error() string { return e.err.Error() }
func (e *pipelineError) Unwrap() error { return e.err }

// needTx is errNeedsTx when statements are being queued (p not nil): the
// next one must run in a transaction, on its own.
func (p *pipeline) needTx() error {
	if p != nil {
		return errNeedsTx
	}
	return nil
}

// send sends the queued statements on conn and reads their results. Each
// but a planEach one runs as a statement prepared on conn the first time
// its text is sent (prep), so the server parses it once per session, and
// plans it once: a share of a steady load is a few small statements, whose
// parsing and planning were a good part of their cost.
func (p *pipeline) send(ctx context.Context, conn *pgconn.PgConn, prep *preparedStmts) error {
	if len(p.stmts) == 0 {
		return nil
	}
	var b pgconn.Batch
	for _, q := range p.stmts {
		if q.planEach {
			b.ExecParams(q.sql, q.params, nil, nil, nil)
			continue
		}
		name, err := prep.name(ctx, conn, q.sql)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				return &pipelineError{q.what(err)}
			}
			return err
		}
		if name == "" {
			b.ExecParams(q.sql, q.params, nil, nil, nil)
		} else {
			b.ExecPrepared(name, q.params, nil, nil)
		}
	}
	results, err := conn.ExecBatch(ctx, &b).ReadAll()
	for i, r := range results {
		if r.Err != nil && i < len(p.stmts) {
			return &pipelineError{p.stmts[i].what(r.Err)}
		}
	}
	if err != nil {
		// The server's error ends the statement after the last one
		// completed (each statement here completes with one result).
		var pe *pgconn.PgError
		if errors.As(err, &pe) && len(results) < len(p.stmts) {
			return &pipelineError{p.stmts[len(results)].what(err)}
		}
		return err
	}
	if len(results) != len(p.stmts) {
		return fmt.Errorf("the server answered %d of %d statements", len(results), len(p.stmts))
	}
	return nil
}

// maxPrepared bounds the statements a writer prepares on its session;
// statements of shapes beyond it go unprepared. A table has a few shapes
// (its delete, its upsert, one more after each schema change).
const maxPrepared = 256

// preparedStmts are the statements prepared on a session, by their text.
type preparedStmts struct {
	names map[string]string
	off   bool // the session cannot keep them (a pooler in transaction mode)
}

// sessionStmts returns the statements prepared on conn: they live as long
// as the session, which outlives a writer (the pool hands it to the next).
func sessionStmts(conn *pgconn.PgConn) *preparedStmts {
	const key = "ferry.prepared"
	if s, ok := conn.CustomData()[key].(*preparedStmts); ok {
		return s
	}
	s := &preparedStmts{}
	conn.CustomData()[key] = s
	return s
}

// name returns the name of the statement prepared for sql, preparing it
// first if needed; "" to send it unprepared.
func (s *preparedStmts) name(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	if s.off {
		return "", nil
	}
	if n, ok := s.names[sql]; ok {
		return n, nil
	}
	if len(s.names) >= maxPrepared {
		return "", nil
	}
	if s.names == nil {
		// The server's choice (auto): a statement is planned for its
		// values five times, then planned once (a generic plan) when that
		// plan costs no more, which it does for an upsert or a
		// checkpoint (no join: the plan is the same whatever the rows)
		// and saves its planning each run (BenchmarkApplySmallBatches,
		// medians: a one-transaction batch 0.50 ms, 0.68 planned each
		// run; 50 transactions 1.9 and 2.2). A delete joins its keys to
		// the table, and a generic plan made while the table was small
		// scanned it whole once it had grown (2.5 ms a batch of 50
		// against 1.7): deletes go unprepared, always planned for their
		// keys (queued.planEach).
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = auto").ReadAll(); err != nil {
			return "", err
		}
		s.names = map[string]string{}
	}
	n := "ferry_apply_" + strconv.Itoa(len(s.names))
	if _, err := conn.Prepare(ctx, n, sql, nil); err != nil {
		return "", err
	}
	s.names[sql] = n
	return n, nil
}

// deferConstraints defers the DEFERRABLE constraints to the commit when a
// table of the batch has one: the source may have moved a unique value
// between rows in one statement, which row by row breaks it for a moment.
func (w *changeWriter) deferConstraints(ctx context.Context, tx pgx.Tx, b *model.ApplyBatch) error {
	for _, tc := range b.Tables {
		if tc == nil || tc.Table == nil {
			continue
		}
		dt, err := w.c.destTable(ctx, tc.Table.Namespace)
		if err != nil {
			return fmt.Errorf("table %s: %w", tc.Table.Namespace, err)
		}
		if dt.deferrable {
			if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
				return fmt.Errorf("defer the constraints of table %s: %w", tc.Table.Namespace, err)
			}
			return nil
		}
	}
	return nil
}

func (w *changeWriter) applyTable(ctx context.Context, tx pgx.Tx, p *pipeline, tc *model.TableChanges) error {
	t := tc.Table
	if len(tc.RowChanges) > 0 {
		if err := p.needTx(); err != nil {
			return err
		}
		return w.applyRows(ctx, tx, tc)
	}
	if len(tc.Deletes) == 0 && len(tc.Upserts) == 0 {
		return nil
	}
	if len(t.PrimaryKey) == 0 {
		return fmt.Errorf("no primary key: ferry applies its changes by key, or by whole row with a full replica identity at the source (ALTER TABLE ... REPLICA IDENTITY FULL)")
	}
	dt, err := w.c.destTable(ctx, t.Namespace)
	if err != nil {
		return err
	}
	if len(dt.pk) == 0 {
		return w.c.noKeyError(ctx, t)
	}
	keyIdx := t.KeyIndexes()
	for i, ki := range keyIdx {
		if ki < 0 {
			return fmt.Errorf("primary key column %q is not a column", t.PrimaryKey[i])
		}
	}
	if len(tc.Deletes) > 0 {
		if err := deleteKeys(ctx, tx, p, t, dt, keyIdx, tc.Deletes); err != nil {
			return err
		}
	}
	cols, err := writableColumns(t, dt)
	if err != nil {
		return err
	}
	var full []model.Row
	partial := map[string][]model.Row{} // by the mask of unchanged columns
	for _, row := range tc.Upserts {
		if len(row) != len(t.Columns) {
			return fmt.Errorf("upsert row has %d values for %d columns", len(row), len(t.Columns))
		}
		var mask []byte
		for _, i := range cols {
			if model.IsUnchanged(row[i]) {
				if mask == nil {
					mask = make([]byte, len(t.Columns))
					for j := range mask {
						mask[j] = '0'
					}
				}
				mask[i] = '1'
			}
		}
		if mask == nil {
			full = append(full, row)
		} else {
			partial[string(mask)] = append(partial[string(mask)], row)
		}
	}
	if err := upsertRows(ctx, tx, p, t, dt, cols, full); err != nil {
		return err
	}
	if len(partial) > 0 {
		if err := p.needTx(); err != nil { // their row count is read
			return err
		}
	}
	masks := make([]string, 0, len(partial))
	for m := range partial {
		masks = append(masks, m)
	}
	sort.Strings(masks)
	for _, m := range masks {
		if err := updatePresent(ctx, tx, t, dt, cols, keyIdx, m, partial[m]); err != nil {
			return err
		}
	}
	return nil
}

// arrayLiterals builds, for each of the given columns, one PostgreSQL
// text[] literal holding that column's values across rows, in text form.
func arrayLiterals(t *model.Table, rows []model.Row, cols []int, keyOnly bool) ([][]byte, error) {
	out := make([][]byte, len(cols))
	var field []byte
	var err error
	for j, i := range cols {
		buf := make([]byte, 0, 16*len(rows)+2)
		buf = append(buf, '{')
		for r, row := range rows {
			if r > 0 {
				buf = append(buf, ',')
			}
			v := row[i]
			if keyOnly {
				v = row[j]
			}
			if v == nil {
				buf = append(buf, "NULL"...)
				continue
			}
			if model.IsUnchanged(v) {
				return nil, fmt.Errorf("column %s: unexpected unchanged value", t.Columns[i].Name)
			}
			if field, err = appendText(field[:0], t.Columns[i].Type, v); err != nil {
				return nil, fmt.Errorf("column %s, key %s: %w", t.Columns[i].Name, keyText(t, row), err)
			}
			buf = appendQuoted(buf, field)
		}
		out[j] = append(buf, '}')
	}
	return out, nil
}

// unnestFrom renders "unnest($1::text[], ...) AS u(a1, ...)" for n columns.
func unnestFrom(n int) string {
	params, aliases := textParams(n, "::text[]")
	return "unnest(" + params + ") AS u(" + aliases + ")"
}

// valuesFrom renders "(VALUES ($1::text, ...)) AS u(a1, ...)": one row of n
// text columns, named as unnestFrom names them.
func valuesFrom(n int) string {
	params, aliases := textParams(n, "::text")
	return "(VALUES (" + params + ")) AS u(" + aliases + ")"
}

// textParams renders n parameters with a cast, "$1::text, ...", and their
// column aliases, "a1, ...".
func textParams(n int, cast string) (params, aliases string) {
	p := make([]string, n)
	a := make([]string, n)
	for i := range p {
		p[i] = "$" + strconv.Itoa(i+1) + cast
		a[i] = "a" + strconv.Itoa(i+1)
	}
	return strings.Join(p, ", "), strings.Join(a, ", ")
}

// largeRowBytes is the size from which a row is applied alone, its values
// plain statement parameters: in a text[] array literal each value would be
// copied once more, escaped, before the driver copies it into its message
// (for a 100 MB value, hundreds of MB more at once).
const largeRowBytes = 1 << 20

// collectBeforeBytes is the size from which a row is applied after a
// garbage collection (a few milliseconds, against the hundreds it takes to
// send that many bytes).
const collectBeforeBytes = 32 << 20

// execRows runs the statement sql(from) over rows, where from names them
// u(a1, ..., an), one text column per entry of cols (the rows' values at
// cols; with keyOnly the rows are keys and column j is their jth value).
// The rows go together, as unnest of text[] arrays: one statement whatever
// their number; but a large row goes alone (largeRowBytes). It returns the
// number of rows the statements affected.
//
// With a pipeline p (nil for none), the statement for the small rows is
// queued there instead of run, with what to name its error, and the count
// returned does not include its rows; a large row asks for a transaction (errNeedsTx).
func execRows(ctx context.Context, tx pgx.Tx, p *pipeline, what func(error) error, t *model.Table, rows []model.Row, cols []int, keyOnly bool, sql func(from string) string) (int64, error) {
	large := 0
	for _, row := range rows {
		if row.Size() >= largeRowBytes {
			large++
		}
	}
	small := rows
	var n int64
	if large > 0 {
		if err := p.needTx(); err != nil {
			return 0, err
		}
		small = make([]model.Row, 0, len(rows)-large)
		for _, row := range rows {
			if row.Size() < largeRowBytes {
				small = append(small, row)
				continue
			}
			params, err := rowParams(t, row, cols, keyOnly)
			if err != nil {
				return n, err
			}
			if row.Size() >= collectBeforeBytes {
				// The driver copies the row into its message. The garbage
				// the row's decoding left (the message it came in from the
				// source) is not collected yet, since a live heap this
				// large puts the next collection twice as high: collect it
				// now, so the copy takes its place instead of new memory.
				runtime.GC()
			}
			k, err := execParams(ctx, tx, sql(valuesFrom(len(cols))), params)
			if err != nil {
				return n, fmt.Errorf("key %s: %w", keyText(t, row), err)
			}
			n += k
		}
	}
	if len(small) == 0 {
		return n, nil
	}
	params, err := arrayLiterals(t, small, cols, keyOnly)
	if err != nil {
		return n, err
	}
	if p != nil {
		// A delete (keyOnly) joins its keys to the table; an upsert's plan
		// is the same whatever its rows.
		p.add(sql(unnestFrom(len(cols))), params, &t.Namespace, what, keyOnly)
		return n, nil
	}
	k, err := execParams(ctx, tx, sql(unnestFrom(len(cols))), params)
	return n + k, err
}

// rowParams is one row's values at cols (see execRows) as text parameters.
func rowParams(t *model.Table, row model.Row, cols []int, keyOnly bool) ([][]byte, error) {
	params := make([][]byte, len(cols))
	for j, i := range cols {
		v := row[i]
		if keyOnly {
			v = row[j]
		}
		if v == nil {
			continue
		}
		if model.IsUnchanged(v) {
			return nil, fmt.Errorf("column %s: unexpected unchanged value", t.Columns[i].Name)
		}
		p, err := textParam(t.Columns[i].Type, v)
		if err != nil {
			return nil, fmt.Errorf("column %s, key %s: %w", t.Columns[i].Name, keyText(t, row), err)
		}
		params[j] = p
	}
	return params, nil
}

// castCol renders the text of unnest column j cast to the destination
// column's type: PostgreSQL's own input function parses it.
func castCol(j int, dc *dstCol) string {
	return "u.a" + strconv.Itoa(j+1) + "::" + dc.cast
}

func execParams(ctx context.Context, tx pgx.Tx, sql string, params [][]byte) (int64, error) {
	res := tx.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	tag, err := res.Close()
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// upsertRows writes whole rows: an upsert by primary key, or a plain insert
// for a table without one.
// With a pipeline p (nil for none) the statement may be queued there.
func upsertRows(ctx context.Context, tx pgx.Tx, p *pipeline, t *model.Table, dt *dstTable, cols []int, rows []model.Row) error {
	if len(rows) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	casts := make([]string, len(cols))
	inKey := map[string]bool{}
	for _, k := range t.PrimaryKey {
		inKey[k] = true
	}
	var sets []string
	for j, i := range cols {
		name := t.Columns[i].Name
		names[j] = quoteIdent(name)
		casts[j] = castCol(j, dt.cols[name])
		if !inKey[name] {
			sets = append(sets, names[j]+" = EXCLUDED."+names[j])
		}
	}
	onConflict := ""
	if len(t.PrimaryKey) > 0 {
		keys := make([]string, len(t.PrimaryKey))
		for i, k := range t.PrimaryKey {
			keys[i] = quoteIdent(k)
		}
		onConflict = " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
		if len(sets) == 0 {
			onConflict += "NOTHING"
		} else {
			onConflict += "UPDATE SET " + strings.Join(sets, ", ")
		}
	}
	sql := func(from string) string {
		return "INSERT INTO " + dt.name + " (" + strings.Join(names, ", ") + ") OVERRIDING SYSTEM VALUE SELECT " +
			strings.Join(casts, ", ") + " FROM " + from + onConflict
	}
	what := func(err error) error { return fmt.Errorf("upsert %d rows: %w", len(rows), err) }
	if _, err := execRows(ctx, tx, p, what, t, rows, cols, false, sql); err != nil {
		return what(err)
	}
	return nil
}

// keyMatch renders "d.k1 = u.a1::type AND ..." for the key columns, which
// are the first len(keyIdx) unnest columns.
func keyMatch(t *model.Table, dt *dstTable, keyIdx []int) string {
	conds := make([]string, len(keyIdx))
	for j, ki := range keyIdx {
		name := t.Columns[ki].Name
		conds[j] = "d." + quoteIdent(name) + " = " + castCol(j, dt.cols[name])
	}
	return strings.Join(conds, " AND ")
}

func deleteKeys(ctx context.Context, tx pgx.Tx, p *pipeline, t *model.Table, dt *dstTable, keyIdx []int, keys []model.Row) error {
	for _, k := range keys {
		if len(k) != len(keyIdx) {
			return fmt.Errorf("delete key has %d values for a key of %d columns", len(k), len(keyIdx))
		}
	}
	sql := func(from string) string {
		return "DELETE FROM " + dt.name + " AS d USING " + from + " WHERE " + keyMatch(t, dt, keyIdx)
	}
	what := func(err error) error { return fmt.Errorf("delete %d keys: %w", len(keys), err) }
	if _, err := execRows(ctx, tx, p, what, t, keys, keyIdx, true, sql); err != nil {
		return what(err)
	}
	return nil
}

// updatePresent updates rows some of whose values the source left
// unchanged (mask marks them): only the other columns are set, so an
// unchanged TOAST value keeps the destination's. The rows must exist: an
// earlier insert or the copy wrote them.
func updatePresent(ctx context.Context, tx pgx.Tx, t *model.Table, dt *dstTable, cols, keyIdx []int, mask string, rows []model.Row) error {
	inKey := map[int]bool{}
	for _, ki := range keyIdx {
		inKey[ki] = true
	}
	var unchanged []string
	set := append([]int(nil), keyIdx...)
	for _, i := range cols {
		if mask[i] == '1' {
			if inKey[i] {
				return fmt.Errorf("a change leaves key column %s unchanged", t.Columns[i].Name)
			}
			unchanged = append(unchanged, t.Columns[i].Name)
			continue
		}
		if !inKey[i] {
			set = append(set, i)
		}
	}
	var n int64
	var err error
	if len(set) > len(keyIdx) {
		assigns := make([]string, 0, len(set)-len(keyIdx))
		for j := len(keyIdx); j < len(set); j++ {
			name := t.Columns[set[j]].Name
			assigns = append(assigns, quoteIdent(name)+" = "+castCol(j, dt.cols[name]))
		}
		sql := func(from string) string {
			return "UPDATE " + dt.name + " AS d SET " + strings.Join(assigns, ", ") + " FROM " + from + " WHERE " + keyMatch(t, dt, keyIdx)
		}
		if n, err = execRows(ctx, tx, nil, nil, t, rows, set, false, sql); err != nil {
			return fmt.Errorf("update %d rows: %w", len(rows), err)
		}
	} else {
		keys, err := arrayLiterals(t, rows, keyIdx, false)
		if err != nil {
			return err
		}
		sql := "SELECT count(*) FROM " + dt.name + " AS d JOIN " + unnestFrom(len(keyIdx)) + " ON " + keyMatch(t, dt, keyIdx)
		res, err := queryText(ctx, tx, sql, keys)
		if err != nil {
			return fmt.Errorf("look up %d rows: %w", len(rows), err)
		}
		if n, err = strconv.ParseInt(res[0][0], 10, 64); err != nil {
			return err
		}
	}
	if n == int64(len(rows)) {
		return nil
	}
	// Name a few of the missing keys.
	sql := "SELECT u.* FROM " + unnestFrom(len(keyIdx)) + " WHERE NOT EXISTS (SELECT 1 FROM " + dt.name + " AS d WHERE " + keyMatch(t, dt, keyIdx) + ") LIMIT 5"
	keys, err := arrayLiterals(t, rows, keyIdx, false)
	if err != nil {
		return err
	}
	res, err := queryText(ctx, tx, sql, keys)
	if err != nil {
		return fmt.Errorf("look up missing rows: %w", err)
	}
	var missing []string
	for _, vals := range res {
		parts := make([]string, len(vals))
		for j, v := range vals {
			parts[j] = t.Columns[keyIdx[j]].Name + "=" + v
		}
		missing = append(missing, "("+strings.Join(parts, ", ")+")")
	}
	return fmt.Errorf("key %s: the row does not exist at the destination and the change leaves column(s) %s unchanged (PostgreSQL did not send them), so ferry cannot insert it; copy the table again (ferry sync --restart)",
		strings.Join(missing, ", "), strings.Join(unchanged, ", "))
}

// queryText runs a query with text parameters and returns its rows as text.
func queryText(ctx context.Context, tx pgx.Tx, sql string, params [][]byte) ([][]string, error) {
	res := tx.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	var out [][]string
	for res.NextRow() {
		vals := res.Values()
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = string(v)
		}
		out = append(out, row)
	}
	if _, err := res.Close(); err != nil {
		return nil, err
	}
	return out, nil
}
