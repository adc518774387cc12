package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// errNoPlan is SyncSequences called before Prepare: the flow's tables, and
// so its schemas and renames, are not known yet.
var errNoPlan = errors.New("sequences: the flow has no plan yet (Prepare first)")

// SyncSequences sets every sequence of the flow's schemas at the
// destination to the source's value, so the destination's next insert gets
// a number the source never handed out (logical replication carries no
// sequence). A sequence owned by a column goes where its table goes
// (--rename), and one owned by a table outside the flow is left alone. It
// returns how many were set; sequences the destination lacks are logged
// once, not an error (the schema may be created later). Each side's step
// rides out an outage like every step.
func (e *Engine) SyncSequences(ctx context.Context) (int, error) {
	if e.src.SequenceReader == nil || e.dst.SequenceWriter == nil {
		return 0, nil
	}
	if e.tables == nil {
		return 0, errNoPlan
	}
	var seqs []connector.Sequence
	err := e.onSource(ctx, "read sequences", func(ctx context.Context) (err error) {
		seqs, err = e.src.SequenceReader.Sequences(ctx, e.sourceSchemas())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read the source's sequences: %w", err)
	}
	seqs = e.destinationSequences(seqs)
	var missing []connector.Sequence
	err = e.onDestination(ctx, "set sequences", func(ctx context.Context) (err error) {
		missing, err = e.dst.SequenceWriter.SetSequences(ctx, seqs)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set the destination's sequences: %w", err)
	}
	e.seqs.warnMissing(e, missing)
	n := len(seqs) - len(missing)
	e.progress.Sequences.copied(time.Now(), n, len(missing))
	return n, nil
}

// sourceSchemas are the schemas of the flow's source tables: the
// sequences of these schemas are the flow's.
func (e *Engine) sourceSchemas() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range e.tables {
		if s := t.src.Namespace.Schema; !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// destinationSequences names the source's sequences at the destination: an
// owned one in its table's destination schema, with its table's destination
// name as owner; a standalone one through the schema renames. Sequences of
// tables outside the flow are dropped.
func (e *Engine) destinationSequences(seqs []connector.Sequence) []connector.Sequence {
	out := make([]connector.Sequence, 0, len(seqs))
	for _, s := range seqs {
		if s.Owned() {
			tr := e.byNS[s.Owner]
			if tr == nil {
				continue
			}
			s.Owner = tr.dst.Namespace
			s.Name = model.Namespace{Schema: tr.dst.Namespace.Schema, Table: s.Name.Table}
		} else {
			s.Name = e.renames.Apply(s.Name)
		}
		out = append(out, s)
	}
	return out
}

// sequenceWarnings remembers which missing sequences were logged, so a
// periodic copy logs each once.
type sequenceWarnings struct {
	mu     sync.Mutex
	logged map[model.Namespace]bool
}

func (w *sequenceWarnings) warnMissing(e *Engine, missing []connector.Sequence) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, s := range missing {
		if !w.logged[s.Name] {
			if w.logged == nil {
				w.logged = map[model.Namespace]bool{}
			}
			w.logged[s.Name] = true
			names = append(names, s.Name.String())
		}
	}
	if len(names) > 0 {
		e.log.Warn("sequences missing at the destination, not set; they are set once they exist", "sequences", strings.Join(names, ", "))
	}
}

// syncSequencesEvery copies the sequences at once and then every period
// while the stream runs (--sync-sequences), so a destination promoted
// without a clean cutover still hands out fresh numbers. A failed copy is
// logged and shown in the progress, and the next period tries again: the
// stream goes on, and a cutover sets the sequences anyway.
func (e *Engine) syncSequencesEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.SyncSequences(ctx); err != nil && ctx.Err() == nil {
			e.progress.Sequences.failed(err)
			e.log.Warn("cannot copy the sequences; trying again", "in", every.String(), "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refuseSequenceSync refuses --sync-sequences where nothing can honour it.
func (e *Engine) refuseSequenceSync() error {
	if e.cfg.SyncSequences <= 0 {
		return nil
	}
	switch {
	case e.src.SequenceReader == nil:
		return errs.BadConfig(fmt.Sprintf("--sync-sequences: source %s cannot read its sequences", errs.Redact(e.cfg.Source)),
			"leave --sync-sequences out, or use a source"+connector.SuchAs(connector.Offering(func(a connector.Abilities) bool { return a.ReadSequences })))
	case e.dst.SequenceWriter == nil:
		return errs.BadConfig(fmt.Sprintf("--sync-sequences: destination %s cannot set sequences", errs.Redact(e.cfg.Destination)),
			"leave --sync-sequences out, or use a destination"+connector.SuchAs(connector.Offering(func(a connector.Abilities) bool { return a.SetSequences })))
	case e.mode == flow.ModeSnapshot:
		return errs.BadConfig("--sync-sequences copies sequences during change data capture, and --mode snapshot has none",
			"leave --sync-sequences out (or run with change data capture)")
	}
	return nil
}
