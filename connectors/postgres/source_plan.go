package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

const (
	defaultPartitionRows = 250_000
	// partitionRowBytes is the row width --partition-rows assumes: a
	// partition holds at most partition-rows times this many bytes (with
	// TOAST), 64 MiB by default.
	partitionRowBytes = 256
	defaultBatchRows  = 5000
	// countBelowPages: a table never analyzed is counted exactly when it is
	// smaller than this (100 MB); a bigger one is estimated.
	countBelowPages = 12800
)

// Plan partitions the tables by CTID block ranges. With opts.CDC it first
// creates the flow's publication and replication slot; T0 is the slot's
// consistent point, and the slot's exported snapshot (exactly T0) is kept
// open for this process's partition readers; every partition names it
// (Partition.Snapshot). Without CDC the partitions name a snapshot exported
// by a plain transaction, so the copy is consistent across tables.
func (c *Conn) Plan(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) (*model.Plan, error) {
	partRows := opts.PartitionRows
	if partRows <= 0 {
		partRows = defaultPartitionRows
	}
	ordered, err := c.selected(ctx, tables)
	if err != nil {
		return nil, err
	}
	plan := &model.Plan{Tables: tables, CreatedAt: time.Now().UTC()}
	for _, s := range ordered {
		parts, err := c.planTable(ctx, s, opts.RowsFor(s.table.Namespace, partRows))
		if err != nil {
			return nil, err
		}
		plan.Partitions = append(plan.Partitions, parts...)
	}
	var snap string
	switch {
	case opts.CDC:
		t0, s, err := c.startCDC(ctx, ordered, opts.Flow, opts.Recorded)
		if err != nil {
			return nil, err
		}
		plan.T0, plan.SnapshotConsistent, snap = t0, s != "", s
	case c.opts.Snapshot:
		snap = c.exportSnapshot(ctx)
	}
	// Readers in this process read the partitions at it while this Conn
	// holds it; anywhere else (a resumed run, a scale-out worker) they read
	// current data.
	for i := range plan.Partitions {
		plan.Partitions[i].Snapshot = snap
	}
	plan.SetBatchRows(opts.BatchRows)
	return plan, nil
}

// selected discovers the given tables again and checks that ferry can read
// them, in the given order.
func (c *Conn) selected(ctx context.Context, tables []*model.Table) ([]*srcTable, error) {
	var names []model.Namespace
	for _, t := range tables {
		names = append(names, t.Namespace)
	}
	infos, err := c.discover(ctx, names)
	if err != nil {
		return nil, err
	}
	byNS := map[model.Namespace]*srcTable{}
	for _, s := range infos {
		byNS[s.table.Namespace] = s
	}
	var missing []string
	for _, t := range tables {
		if byNS[t.Namespace] == nil {
			missing = append(missing, t.Namespace.String())
		}
	}
	if len(missing) > 0 {
		return nil, errs.BadConfig(fmt.Sprintf("tables missing at %s: %s", c.where(), strings.Join(missing, ", ")), "check the table names; they were dropped or renamed since they were listed")
	}
	ordered := make([]*srcTable, len(tables))
	for i, t := range tables {
		ordered[i] = byNS[t.Namespace]
	}
	if err := checkSelected(ordered); err != nil {
		return nil, err
	}
	return ordered, nil
}

// Preflight checks, before the engine touches the destination, everything
// Plan would refuse: privileges and column types of the tables and, for
// CDC, wal_level, the privilege to replicate, replica identities, the slot
// (free name, not in use), and the privileges to create the publication or
// the one named in the URL.
func (c *Conn) Preflight(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) error {
	ordered, err := c.selected(ctx, tables)
	if err != nil || !opts.CDC {
		return err
	}
	if err := c.checkCDC(ctx, ordered); err != nil {
		return err
	}
	if opts.Recorded {
		return nil // the plan adopts the recorded slot, and checks it then
	}
	slot, ownSlot := c.slotFor(opts.Flow)
	exists, _, err := c.checkSlot(ctx, slot, ownSlot, opts.Flow)
	if err != nil {
		return err
	}
	if !exists {
		var used, limit int
		if err := c.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots)::int, current_setting('max_replication_slots')::int`).Scan(&used, &limit); err != nil {
			return c.classify(err, "count replication slots")
		}
		if used >= limit {
			return c.slotError(ctx, &pgconn.PgError{Code: "53400", Message: "all replication slots are in use"}, slot)
		}
	}
	pub, own := c.publicationFor(opts.Flow)
	if !own {
		return c.checkPublication(ctx, pub, ordered)
	}
	// Creating the publication needs the tables' owner, and CREATE on the
	// database (superusers aside), which managed services' users often lack.
	oids := make([]uint32, len(ordered))
	for i, s := range ordered {
		oids[i] = s.oid
	}
	var canCreate bool
	if err := c.pool.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&canCreate); err != nil {
		return c.classify(err, "check the CREATE privilege on the database")
	}
	rows, err := c.pool.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = ANY($1) AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1`, oids)
	if err != nil {
		return c.classify(err, "check table owners")
	}
	var notOwned []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err == nil {
			notOwned = append(notOwned, n)
		}
	}
	rows.Close()
	user, db := c.cfg.ConnConfig.User, c.cfg.ConnConfig.Database
	selfMade := func(tables []string) string {
		return fmt.Sprintf("as the tables' owner run CREATE PUBLICATION %s FOR TABLE %s WITH (publish_via_partition_root = true), then add publication=%s to the source URL", showIdent(pub), strings.Join(tables, ", "), pub)
	}
	switch {
	case len(notOwned) > 0:
		msg := fmt.Sprintf("ferry cannot create publication %s: the URL's user does not own %s", pub, strings.Join(notOwned, ", "))
		if !canCreate {
			msg += fmt.Sprintf(" and has no CREATE privilege on database %s", db)
		}
		return errs.BadConfig(msg, selfMade(notOwned))
	case !canCreate:
		names := make([]string, len(ordered))
		for i, s := range ordered {
			names[i] = showQualified(s.table.Namespace.Schema, s.table.Namespace.Table)
		}
		return errs.BadConfig(fmt.Sprintf("ferry cannot create publication %s: %s has no CREATE privilege on database %s", pub, user, db),
			fmt.Sprintf("as the database's owner run GRANT CREATE ON DATABASE %s TO %s, or %s", showIdent(db), showIdent(user), selfMade(names)))
	}
	return nil
}

// planTable splits a table (each partition of a partitioned table) into
// ranges of heap blocks. Block ranges need no index, have the same cost for
// tables with and without a primary key, and are read with TID range scans.
func (c *Conn) planTable(ctx context.Context, s *srcTable, partRows int64) ([]model.Partition, error) {
	type heap struct {
		rel    string // quoted qualified name; "" for the table itself
		pages  int64
		tuples float64
		size   int64 // bytes with TOAST (pg_table_size)
	}
	var heaps []heap
	q := `SELECT '', pg_relation_size(c.oid) / current_setting('block_size')::int8, c.reltuples::float8, pg_table_size(c.oid) FROM pg_class c WHERE c.oid = $1`
	if s.relkind == 'p' {
		q = `SELECT quote_ident(n.nspname) || '.' || quote_ident(l.relname), pg_relation_size(l.oid) / current_setting('block_size')::int8, l.reltuples::float8, pg_table_size(l.oid)
			FROM pg_partition_tree($1::oid) p JOIN pg_class l ON l.oid = p.relid JOIN pg_namespace n ON n.oid = l.relnamespace
			WHERE p.isleaf ORDER BY n.nspname, l.relname`
	}
	rows, err := c.pool.Query(ctx, q, s.oid)
	if err != nil {
		return nil, c.classify(err, "plan table "+s.table.Namespace.String())
	}
	for rows.Next() {
		var h heap
		if err := rows.Scan(&h.rel, &h.pages, &h.tuples, &h.size); err != nil {
			rows.Close()
			return nil, c.classify(err, "plan table "+s.table.Namespace.String())
		}
		heaps = append(heaps, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "plan table "+s.table.Namespace.String())
	}
	var parts []model.Partition
	var totalRows int64
	add := func(rel string, lo, hi int64, last bool, rowsEst, bytesEst int64) {
		p := model.Partition{
			ID: fmt.Sprintf("%s/%04d", s.table.Namespace, len(parts)), Table: s.table.Namespace, Index: len(parts),
			EstimatedRows: rowsEst, EstimatedBytes: bytesEst,
		}
		if rel != "" || lo > 0 {
			p.Lower = encodeBound(rel, lo)
		}
		if !last {
			p.Upper = encodeBound("", hi)
		}
		parts = append(parts, p)
	}
	for _, h := range heaps {
		tuples := h.tuples
		if tuples < 0 && h.pages > 0 {
			if h.pages <= countBelowPages {
				name := h.rel
				if name == "" {
					name = qualified(s.table.Namespace)
				}
				var n int64
				if err := c.pool.QueryRow(ctx, "SELECT count(*) FROM ONLY "+name).Scan(&n); err != nil {
					return nil, c.classify(err, "count rows of "+s.table.Namespace.String())
				}
				tuples = float64(n)
			} else {
				tuples = float64(h.pages) * 50
			}
		}
		tuples = max(tuples, 0)
		totalRows += int64(tuples)
		if h.pages == 0 {
			add(h.rel, 0, 0, true, int64(tuples), 0)
			continue
		}
		perBlock := tuples / float64(h.pages)
		blocks := h.pages
		if perBlock > 0 {
			blocks = max(int64(float64(partRows)/perBlock), 1)
		}
		// Wide rows (large values kept out of line in TOAST, which the
		// heap's blocks do not show) bound a partition by bytes too, so a
		// table of large documents is not one partition read by one lane
		// while the others idle.
		bytesPerBlock := float64(max(h.size, h.pages*8192)) / float64(h.pages)
		blocks = max(min(blocks, int64(float64(partRows*partitionRowBytes)/bytesPerBlock)), 1)
		n := (h.pages + blocks - 1) / blocks
		blocks = (h.pages + n - 1) / n // even out the last partition
		for i := int64(0); i < n; i++ {
			lo, hi := i*blocks, min((i+1)*blocks, h.pages)
			add(h.rel, lo, hi, i == n-1, int64(perBlock*float64(hi-lo)), int64(bytesPerBlock*float64(hi-lo)))
		}
	}
	if s.table.EstimatedRows == 0 {
		s.table.EstimatedRows = totalRows
	}
	if len(parts) > 1 && s.relkind != 'p' && s.hasPK && len(s.table.PrimaryKey) > 0 && c.keyPartitions() {
		return c.keyRangePartitions(ctx, s, parts)
	}
	return parts, nil
}

// Partition bounds: "block=N" for a table's own heap, "rel=<name>;block=N"
// for a partition of a partitioned table (the lower bound names the
// partition; its upper bound is in the same heap).
func encodeBound(rel string, block int64) string {
	if rel == "" {
		return "block=" + strconv.FormatInt(block, 10)
	}
	return "rel=" + rel + ";block=" + strconv.FormatInt(block, 10)
}

func decodeBound(s string) (rel string, block int64, err error) {
	if s == "" {
		return "", 0, nil
	}
	if strings.HasPrefix(s, "rel=") {
		i := strings.LastIndex(s, ";block=")
		if i < 0 {
			return "", 0, fmt.Errorf("invalid partition bound %q", s)
		}
		rel, s = s[4:i], s[i+1:]
	}
	if !strings.HasPrefix(s, "block=") {
		return "", 0, fmt.Errorf("invalid partition bound %q", s)
	}
	block, err = strconv.ParseInt(s[6:], 10, 64)
	if err != nil || block < 0 {
		return "", 0, fmt.Errorf("invalid partition bound %q", s)
	}
	return rel, block, nil
}
