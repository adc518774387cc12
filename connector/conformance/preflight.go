package conformance

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// checkPreflight: the plans the engine makes of the harness's table pass
// Preflight; a table the source does not hold, and CDC asked of a
// connection that cannot serve it, are refused with a ConfigError saying
// how to fix it.
func checkPreflight(t *testing.T, h SourceHarness, src connector.Source, pf connector.Preflighter, ns model.Namespace) {
	tbl := findTable(t, src, ns)
	copyOnly := connector.PlanOptions{Flow: flowName, PartitionRows: partitionRows, BatchRows: batchRows}
	cs, isCDC := src.(connector.ChangeSource)
	t.Run("Passes", func(t *testing.T) {
		opts := []connector.PlanOptions{copyOnly}
		if isCDC {
			opts = append(opts, cdcOptions)
		}
		for _, o := range opts {
			if err := pf.Preflight(ctxFor(t), []*model.Table{tbl}, o); err != nil {
				t.Fatalf("Preflight of %s with CDC=%v: %v", ns, o.CDC, err)
			}
		}
		if isCDC {
			// Preflight leaves nothing a plan would trip on: the flow's
			// slot, if it made one, is still free for it.
			planCDC(t, cs, tbl)
		}
	})
	t.Run("RefusesMissingTable", func(t *testing.T) {
		missing := &model.Table{Namespace: model.Namespace{Schema: ns.Schema, Table: "conf_missing"}, Columns: tbl.Columns, PrimaryKey: tbl.PrimaryKey}
		err := pf.Preflight(ctxFor(t), []*model.Table{tbl, missing}, copyOnly)
		wantFix(t, err, "a table the source does not hold")
		if !strings.Contains(err.Error(), missing.Namespace.Table) {
			t.Fatalf("Preflight's refusal does not name the missing table %s: %v", missing.Namespace, err)
		}
	})
	t.Run("RefusesCDCItCannotServe", func(t *testing.T) {
		if !isCDC {
			t.Skip("not a ChangeSource")
		}
		if h.OpenWithoutCDC == nil {
			t.Skip("the harness has no connection that cannot serve CDC (OpenWithoutCDC)")
		}
		weak := h.OpenWithoutCDC(t)
		closeAtEnd(t, weak)
		wpf, ok := weak.(connector.Preflighter)
		if !ok {
			t.Fatalf("OpenWithoutCDC returned a %T, which is no Preflighter", weak)
		}
		if err := wpf.Preflight(ctxFor(t), []*model.Table{tbl}, copyOnly); err != nil {
			t.Fatalf("Preflight of a copy without CDC, through a connection that can read %s: %v", ns, err)
		}
		wantFix(t, wpf.Preflight(ctxFor(t), []*model.Table{tbl}, cdcOptions), "CDC through a connection that cannot serve it")
	})
}

// wantFix fails unless err is a ConfigError that says how to fix it.
func wantFix(t *testing.T, err error, what string) {
	t.Helper()
	var ce *errs.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Preflight of %s returned %v, want a errs.ConfigError", what, err)
	}
	if ce.Fix == "" {
		t.Fatalf("Preflight of %s says what is wrong (%v) but not how to fix it", what, err)
	}
	t.Logf("Preflight of %s: %v", what, err)
}
