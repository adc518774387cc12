package postgres

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// A build that fails past the search for violations (a row it did not
// look for) drops what it created: a unique index and a foreign key built
// before a failing check, and the INVALID index a failed CONCURRENTLY
// leaves.
func TestBuildPendingDropsWhatItCreatedOnFailure(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "dst")
	srv.Exec(t, db, `CREATE TABLE parent (id bigint PRIMARY KEY);
		CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint, code text, n int);
		CREATE INDEX child_n_key ON child (n);
		INSERT INTO parent VALUES (1);
		INSERT INTO child VALUES (1, 1, 'a', 1), (2, 1, 'a', 2);`)
	u, err := url.Parse(srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	child := model.Namespace{Schema: "public", Table: "child"}
	pending := func(k model.Constraint) *pendingConstraint {
		k.Table = child
		return &pendingConstraint{Constraint: k, rel: qualified(child), temp: tempIndexName(k)}
	}
	fk := pending(model.Constraint{Kind: model.ConstraintForeignKey, Name: "child_parent_fkey", Definition: "FOREIGN KEY (parent_id) REFERENCES public.parent(id)"})
	uqN := pending(model.Constraint{Kind: model.ConstraintUnique, Name: "child_n_key", Index: "btree (n)"})
	check := pending(model.Constraint{Kind: model.ConstraintCheck, Name: "child_n_small", Definition: "CHECK ((n < 2))"})
	uqCode := pending(model.Constraint{Kind: model.ConstraintUniqueIndex, Name: "child_code_key", Index: "btree (code)"})
	conn := srv.Connect(t, db)
	left := func() string {
		var s string
		if err := conn.QueryRow(context.Background(), `SELECT concat_ws(', ',
			(SELECT string_agg(x.relname || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END || CASE WHEN i.indisunique THEN ' unique' ELSE '' END, ', ')
				FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid WHERE i.indrelid = 'child'::regclass AND NOT i.indisprimary),
			(SELECT string_agg(conname, ', ') FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype <> 'p'))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c0 := range []struct {
		todo []*pendingConstraint
		want string
	}{
		{[]*pendingConstraint{uqN, fk, check}, `check constraint "child_n_small"`},
		{[]*pendingConstraint{uqCode}, "could not create unique index"},
	} {
		err := c.buildPending(context.Background(), c0.todo)
		if err == nil || !strings.Contains(err.Error(), c0.want) {
			t.Fatalf("buildPending: %v, want an error containing %q", err, c0.want)
		}
		if got := left(); got != "child_n_key" {
			t.Fatalf("left after a failed build: %s, want only the non-unique index child_n_key", got)
		}
	}
}
