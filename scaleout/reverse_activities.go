package scaleout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/state"
)

// reverseKey is the checkpoint, under the reverse flow's name at the
// forward flow's destination, that records the reverse flow's start.
const (
	reversePrefix = "reverse/"
	reverseKey    = reversePrefix + "start"
)

// side is one connection of a flow, opened alone.
type side struct {
	conn    connector.Connector
	caps    connector.Capabilities
	secrets *errs.Scrubber
}

// openSide resolves and opens one connection by name.
func (a *Activities) openSide(ctx context.Context, name, role string) (*side, error) {
	url, err := a.Connections.Resolve(name, role)
	if err != nil {
		return nil, a.failure(err, nil)
	}
	secrets := errs.NewScrubber(url)
	c, err := connector.Open(ctx, url)
	if err != nil {
		return nil, a.failure(fmt.Errorf("%s %s: %w", role, name, err), secrets)
	}
	return &side{conn: c, caps: connector.Discover(c), secrets: secrets}, nil
}

func (s *side) close(a *Activities, role string) { logClose(a.logger(), role, s.conn) }

// readReverse reads the record of reverse flow's start kept at keeper.
func readReverse(ctx context.Context, keeper connector.CheckpointKeeper, reverse string) (state.ReverseStart, bool, error) {
	var rec state.ReverseStart
	cps, err := keeper.LoadCheckpoints(ctx, reverse)
	if err != nil {
		return rec, false, err
	}
	v, ok := cps[reverseKey]
	if !ok {
		return rec, false, nil
	}
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		return rec, false, fmt.Errorf("the recorded start of flow %s is corrupt: %w", reverse, err)
	}
	return rec, true, nil
}

func writeReverse(ctx context.Context, keeper connector.CheckpointKeeper, rec state.ReverseStart) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return keeper.ReplaceCheckpoints(ctx, rec.Reverse, reversePrefix, map[string]string{reverseKey: string(b)})
}

// CheckReverse checks, before a cutover --reverse drains, that the flow's
// destination can be the source of its reverse flow, and that no earlier
// cutover recorded one.
func (a *Activities) CheckReverse(ctx context.Context, in ReleaseInput) error {
	o := in.Options
	dst, err := a.openSide(ctx, o.Destination, "destination")
	if err != nil {
		return err
	}
	defer dst.close(a, "destination")
	rs, keeper := dst.caps.ReverseStarter, dst.caps.CheckpointKeeper
	if rs == nil || keeper == nil {
		return a.failure(errs.BadConfig(fmt.Sprintf("destination %s cannot be the source of a reverse flow (no change data capture)", o.Destination),
			"cut over without --reverse"), dst.secrets)
	}
	if err := rs.CheckReverse(ctx); err != nil {
		return a.failure(errs.BadConfig(fmt.Sprintf("the destination %s must be a change source: %v", o.Destination, err), "cut over without --reverse, or fix the destination first"), dst.secrets)
	}
	if _, ok, err := readReverse(ctx, keeper, ReverseName(o.Name)); err != nil {
		return a.failure(fmt.Errorf("destination %s: %w", o.Destination, err), dst.secrets)
	} else if ok {
		return a.failure(errs.BadConfig(fmt.Sprintf("reverse flow %q of flow %q was already recorded at %s by an earlier cutover", ReverseName(o.Name), o.Name, o.Destination),
			fmt.Sprintf("end it first (ferry run %s %s --reverse --name %s, then ferry flow cancel %s), or cut over without --reverse", o.Destination, o.Source, o.Name, ReverseName(o.Name))), dst.secrets)
	}
	return nil
}

// StartReverse creates the reverse flow's start at the destination (a
// PostgreSQL slot after everything ferry applied) and records it there,
// under the reverse flow's name. A retry keeps the start made first.
func (a *Activities) StartReverse(ctx context.Context, in StartReverseInput) (state.ReverseStart, error) {
	o := in.Options
	rec := state.ReverseStart{Forward: o.Name, Reverse: ReverseName(o.Name), Source: o.Source, Destination: o.Destination,
		Tables: o.Tables, At: in.Requested, ForwardEnd: in.ForwardEnd}
	dst, err := a.openSide(ctx, o.Destination, "destination")
	if err != nil {
		return rec, err
	}
	defer dst.close(a, "destination")
	rs, keeper := dst.caps.ReverseStarter, dst.caps.CheckpointKeeper
	if rs == nil || keeper == nil {
		return rec, a.failure(errs.BadConfig(fmt.Sprintf("destination %s cannot be the source of a reverse flow", o.Destination), ""), dst.secrets)
	}
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if rec.Start, err = rs.StartReverse(ctx, rec.Reverse, in.Tables); err != nil {
		return rec, a.failure(fmt.Errorf("record the reverse flow's start at %s: %w", o.Destination, err), dst.secrets)
	}
	if err := writeReverse(ctx, keeper, rec); err != nil {
		return rec, a.failure(fmt.Errorf("record the reverse flow's start at %s: %w", o.Destination, err), dst.secrets)
	}
	a.logger().Info("reverse flow's start recorded at the destination", "flow", rec.Reverse, "position", rec.Start, "tables", len(in.Tables))
	return rec, nil
}

// CheckOldSide is the reverse flow's first step: it reads the start the
// cutover recorded at the new database (the reverse flow's source), and
// refuses when a selected table at the old database changed after the
// position the cutover drained to. Once passed, the record says so and the
// forward flow's slot at the old database is dropped.
func (a *Activities) CheckOldSide(ctx context.Context, in CheckOldSideInput) (state.ReverseStart, error) {
	o := in.Options
	forward, _ := strings.CutSuffix(o.Name, "-reverse")
	nu, err := a.openSide(ctx, o.Source, "source")
	if err != nil {
		return state.ReverseStart{}, err
	}
	defer nu.close(a, "source")
	keeper := nu.caps.CheckpointKeeper
	if keeper == nil {
		return state.ReverseStart{}, a.failure(errs.BadConfig(fmt.Sprintf("%s keeps no checkpoints: it cannot be the source of a reverse flow", o.Source), ""), nu.secrets)
	}
	rec, ok, err := readReverse(ctx, keeper, o.Name)
	if err != nil {
		return rec, a.failure(fmt.Errorf("source %s: %w", o.Source, err), nu.secrets)
	}
	if !ok {
		return rec, a.failure(errs.BadConfig(fmt.Sprintf("flow %q was not cut over with --reverse: no reverse start is recorded at %s", forward, o.Source),
			"a reverse flow starts at a cutover: ferry flow cutover "+forward+" --reverse, before the application is switched"), nu.secrets)
	}
	if rec.Source != o.Destination || rec.Destination != o.Source {
		return rec, a.failure(errs.BadConfig(fmt.Sprintf("flow %q was cut over from %s to %s, not from %s to %s", forward, rec.Source, rec.Destination, o.Destination, o.Source),
			"give ferry run --reverse the forward flow's destination first, then its source"), nu.secrets)
	}
	if rec.Checked {
		return rec, nil
	}
	old, err := a.openSide(ctx, o.Destination, "destination")
	if err != nil {
		return rec, err
	}
	defer old.close(a, "destination")
	if old.caps.ChangeSource == nil {
		return rec, a.failure(errs.BadConfig(fmt.Sprintf("%s has no change data capture: ferry cannot tell whether it was written after the cutover", o.Destination), ""), old.secrets)
	}
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	tables, err := engine.SelectTables(ctx, old.caps.Source, rec.Tables)
	if err != nil {
		return rec, a.failure(fmt.Errorf("destination %s: %w", o.Destination, err), old.secrets)
	}
	changed, err := engine.ChangesSince(ctx, old.caps, tables, rec.ForwardEnd, rec.Forward)
	if err != nil {
		return rec, a.failure(fmt.Errorf("read the changes at %s after the cutover: %w", o.Destination, err), old.secrets)
	}
	if len(changed) > 0 {
		var what []string
		for ns, n := range changed {
			what = append(what, fmt.Sprintf("%s (%d change(s))", ns, n))
		}
		sort.Strings(what)
		return rec, a.failure(errs.BadConfig(fmt.Sprintf("%s was written after the cutover (position %s): %s; the reverse flow would mix the new database's changes with these",
			o.Destination, rec.ForwardEnd, strings.Join(what, ", ")),
			"find and stop what still writes there and bring those rows in line by hand (ferry verify lists the keys that differ), then run the reverse flow again"), old.secrets)
	}
	rec.Checked = true
	if err := writeReverse(ctx, keeper, rec); err != nil {
		return rec, a.failure(fmt.Errorf("source %s: %w", o.Source, err), nu.secrets)
	}
	log := a.logger()
	log.Info("no change to the flow's tables at the old database since the cutover", "flow", o.Name, "position", rec.ForwardEnd, "tables", len(tables))
	// The forward flow is over: its checkpoints at the new database go too
	// (its cutover kept them with its slot).
	if err := keeper.DropCheckpoints(ctx, rec.Forward); err != nil {
		log.Warn("could not drop the forward flow's checkpoints at the new database", "flow", rec.Forward, "error", nu.secrets.Scrub(err.Error()))
	}
	if d := old.caps.FlowDropper; d != nil {
		if err := d.DropFlow(ctx, rec.Forward); err != nil {
			log.Warn("could not release the forward flow's replication slot at the old database", "flow", rec.Forward, "error", old.secrets.Scrub(err.Error()))
		} else {
			log.Info("released the forward flow's replication slot at the old database: the reverse flow checked it and needs it no more", "flow", rec.Forward)
		}
	}
	return rec, nil
}

// dropReverseRecord forgets the recorded start at the reverse flow's
// source once the reverse flow is released. A failure leaves a row in
// ferry's checkpoint table, nothing that holds WAL: it is logged.
func (a *Activities) dropReverseRecord(ctx context.Context, source, name string) {
	src, err := a.openSide(ctx, source, "source")
	if err != nil {
		a.logger().Warn("could not drop the reverse flow's recorded start", "flow", name, "error", err)
		return
	}
	defer src.close(a, "source")
	if k := src.caps.CheckpointKeeper; k != nil {
		if err := k.DropCheckpoints(ctx, name); err != nil {
			a.logger().Warn("could not drop the reverse flow's recorded start", "flow", name, "error", src.secrets.Scrub(err.Error()))
		}
	}
}
