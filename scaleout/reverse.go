package scaleout

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// The way back in scale-out mode (docs/cutover.md#the-way-back).
//
// ferry flow cutover NAME --reverse: before the drain, an activity checks
// that the destination can be a change source (exit 2 otherwise); after
// the finishing steps, another creates the reverse flow's slot at the
// destination and records its start there, in ferry's checkpoint table
// under the reverse flow's name (it outlives the forward workflow, whose
// release drops only the forward flow's checkpoints), and in the forward
// workflow's state (its result, for the report). The forward flow keeps its
// slot at the source: nothing is released.
//
// ferry run DEST SRC --reverse: the reverse flow (NAME-reverse, changes
// only, Options.Reverse) runs, before its plan, an activity reading that
// record and checking the old database was not written since the cutover;
// its plan then adopts the recorded slot.

// versionReverse marks workflows that know the way back. Histories from
// before it never take these branches (no --reverse existed).
const versionReverse = "reverse"

// Activities of the way back.
const (
	// ActivityCheckReverse checks, before a cutover --reverse drains, that
	// the destination can be the reverse flow's source.
	ActivityCheckReverse = "ferry.check-reverse"
	// ActivityStartReverse records the reverse flow's start at the
	// destination once the cutover is done.
	ActivityStartReverse = "ferry.start-reverse"
	// ActivityCheckOldSide runs at the reverse flow's first start: it
	// reads the recorded start and refuses when the old database was
	// written after the cutover.
	ActivityCheckOldSide = "ferry.check-old-side"
)

// ReverseName is the name of forward flow's reverse flow.
func ReverseName(forward string) string { return forward + "-reverse" }

// CutoverRequest is the argument of UpdateCutover (none from older
// clients: the zero value).
type CutoverRequest struct {
	// Reverse prepares the way back (ferry flow cutover --reverse).
	Reverse bool `json:"reverse,omitempty"`
}

// StartReverseInput asks for the reverse flow's start at the forward
// flow's destination.
type StartReverseInput struct {
	Options    flow.Config       `json:"options"`
	Tables     []model.Namespace `json:"tables"`
	Requested  time.Time         `json:"requested"`
	ForwardEnd model.Position    `json:"forward_end"`
}

// CheckOldSideInput asks the reverse flow's first-start check. Options
// are the reverse flow's (Source: the new database).
type CheckOldSideInput struct {
	Options flow.Config `json:"options"`
}

// checkReverse runs, in the cutover update's handler, the check of the
// destination before anything is recorded.
func (r *flowRun) checkReverse(ctx workflow.Context) error {
	workflow.GetVersion(ctx, versionReverse, workflow.DefaultVersion, 1)
	err := workflow.ExecuteActivity(r.options(r.actCtx, "check-reverse#"+fmt.Sprint(r.s.Runs), 10*time.Minute), ActivityCheckReverse,
		ReleaseInput{Options: r.in.Options}).Get(ctx, nil)
	if err != nil {
		return temporal.NewApplicationError("--reverse: "+reason(err), errTypeConfig)
	}
	return nil
}

// startReverse records the reverse flow's start once the cutover is done.
func (r *flowRun) startReverse(ctx, actCtx workflow.Context) error {
	s := r.s
	var names []model.Namespace
	for _, t := range s.Plan.Tables {
		names = append(names, t.Namespace)
	}
	in := StartReverseInput{Options: r.in.Options, Tables: names, Requested: s.Cut.Requested, ForwardEnd: s.Cut.Position}
	var rec state.ReverseStart
	err := workflow.ExecuteActivity(r.options(actCtx, "start-reverse#"+fmt.Sprint(s.Runs), 10*time.Minute), ActivityStartReverse, in).Get(actCtx, &rec)
	if err != nil {
		return failure("cutover done, but the way back was not prepared (run ferry flow cutover "+r.in.Options.Name+" --reverse again before switching the application)", err)
	}
	s.Reverse = &rec
	return nil
}

// checkOldSide is the reverse flow's first step: the recorded start, and
// no write at the old database since the cutover.
func (r *flowRun) checkOldSide(ctx, actCtx workflow.Context) error {
	workflow.GetVersion(ctx, versionReverse, workflow.DefaultVersion, 1)
	var rec state.ReverseStart
	err := workflow.ExecuteActivity(r.options(actCtx, "check-old-side", 30*time.Minute), ActivityCheckOldSide,
		CheckOldSideInput{Options: r.in.Options}).Get(actCtx, &rec)
	if err != nil {
		return failure("reverse flow", err)
	}
	r.s.ReverseOf = &rec
	if len(r.in.Options.Tables) == 0 {
		r.in.Options.Tables = rec.Tables
	}
	return nil
}
