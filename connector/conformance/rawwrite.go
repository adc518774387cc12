package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkRawWrite: AcceptsRaw turns down, without an error, formats the
// destination cannot store byte for byte; and raw batches its own source
// reads, written (twice, as a retried partition is) into a table of the
// same definition, give the source's rows.
func checkRawWrite(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	rw, ok := d.(connector.RawWriter)
	if !ok {
		t.Skip("not a RawWriter")
	}
	refuse := func(tbl *model.Table, f *model.RawFormat, what string) {
		t.Helper()
		ok, err := rw.AcceptsRaw(ctxFor(t), tbl, f)
		if err != nil || ok {
			t.Fatalf("AcceptsRaw of %s into %s = %v, %v; want false and no error", what, tbl.Namespace, ok, err)
		}
	}
	plain := destTable(h, "conf_raw_refused")
	create(t, d, plain)
	refuse(plain, &model.RawFormat{Name: "conformance-unknown", Columns: []string{"id", "v"}, Types: []string{"bigint", "text"}}, "a format of an unknown name")

	if h.OpenSource == nil {
		t.Skip("the harness has no source of the destination's kind (OpenSource) to read raw batches from")
	}
	src, ns := h.OpenSource(t, sourceRows)
	closeAtEnd(t, src)
	rr, ok := src.(connector.RawReader)
	if !ok {
		t.Skipf("the harness's source, a %T, is no RawReader to read raw batches from", src)
	}
	stbl := findTable(t, src, ns)
	f, ok, err := rr.RawFormat(ctxFor(t), stbl)
	if err != nil {
		t.Fatalf("RawFormat of %s: %v", ns, err)
	}
	if !ok {
		t.Skipf("the source cannot read %s raw", ns)
	}
	dtbl := *stbl
	dtbl.Namespace = model.Namespace{Schema: h.Schema, Table: "conf_raw"}
	create(t, d, &dtbl)
	if ok, err := rw.AcceptsRaw(ctxFor(t), &dtbl, f); err != nil || !ok {
		t.Fatalf("AcceptsRaw of %s's own format %+v into %s, created from the same definition = %v, %v; want true", ns, *f, dtbl.Namespace, ok, err)
	}
	retyped := *f
	retyped.Types = slices.Clone(f.Types)
	retyped.Types[len(retyped.Types)-1] = "conformance-" + retyped.Types[len(retyped.Types)-1]
	refuse(&dtbl, &retyped, "the format with a column of another type")
	narrower := *f
	narrower.Columns, narrower.Types = f.Columns[:len(f.Columns)-1], f.Types[:len(f.Types)-1]
	refuse(&dtbl, &narrower, "the format without its last column")
	renamed := *f
	renamed.Name = f.Name + "-conformance"
	refuse(&dtbl, &renamed, "the format under another name")

	var batches []*model.RowBatch
	for _, part := range plan(t, src, stbl, connector.PlanOptions{PartitionRows: partitionRows, BatchRows: batchRows}).Partitions {
		err := rr.ReadPartitionRaw(ctxFor(t), stbl, part, "", f, func(b *model.RowBatch) error {
			if b.Raw == nil {
				return fmt.Errorf("ReadPartitionRaw emitted a batch without Raw")
			}
			batches = append(batches, &model.RowBatch{Table: &dtbl, Partition: part.ID, Raw: b.Raw, Cursor: b.Cursor})
			return nil
		})
		if err != nil {
			t.Fatalf("ReadPartitionRaw %s: %v", part.ID, err)
		}
	}
	write(t, d, batches...)
	write(t, d, batches...)
	finish(t, d, &dtbl)
	got, readable := readRows(t, h, dtbl.Namespace)
	if !readable {
		t.Fatalf("%s cannot be read back: the raw copy went unchecked", dtbl.Namespace)
	}
	if g, w := joined(got), joined(readSource(t, src, stbl)); !slices.Equal(g, w) {
		t.Fatalf("%s, copied raw from %s, holds %d rows [%s], want %d [%s]", dtbl.Namespace, ns, len(g), ends(g), len(w), ends(w))
	}
}

// joined renders rows as sorted "a|b" strings, to compare them as a
// multiset.
func joined(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "|")
	}
	slices.Sort(out)
	return out
}
