package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydb/ferry/engine"
)

const scope = "github.com/ferrydb/ferry"

// Latency buckets in seconds, from a fast local write to a slow remote one.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// FlowInfo names the flow being instrumented. It carries no URL: metrics and
// spans never hold a connection string.
type FlowInfo struct {
	Name string
	Mode string
	// Coordinator is "local" for ferry sync.
	Coordinator string
	// Scrub removes secrets from error messages before they enter a span;
	// nil keeps them as they are.
	Scrub func(string) string
	// Worker is set on a scale-out worker, which runs pieces of a flow for
	// as long as it lives: its partition and apply spans are roots of their
	// own (the flow's root span belongs to the runner, which knows when the
	// flow ends).
	Worker bool
}

// Flow instruments one flow: it is the engine's Observer, reads the engine's
// snapshots when metrics are collected, and owns the flow's spans.
type Flow struct {
	info    FlowInfo
	snap    func() engine.Snapshot
	flowSet attribute.Set

	rowsRead, rowsWritten, bytesRead, bytesWritten metric.Int64Counter
	changesApplied, errorsTotal, retries           metric.Int64Counter
	writeLatency, applyLatency                     metric.Float64Histogram
	reg                                            metric.Registration

	tablesMu sync.RWMutex
	tables   map[string]metric.MeasurementOption // flow and table attributes, by table

	tracer  trace.Tracer // nil without a trace exporter: no span is made
	rootCtx context.Context
	root    trace.Span
	spansMu sync.Mutex
	parts   map[string]*partSpan
	ended   bool
	failed  bool // the root span already carries the run's error
}

type partSpan struct {
	span trace.Span
	rows int64
}

// Flow instruments a flow. snap gives the engine's progress (the engine's
// Progress().Snapshot); it is called when metrics are collected. ctx is the
// parent of the flow's root span. End the flow with End.
func (t *Telemetry) Flow(ctx context.Context, info FlowInfo, snap func() engine.Snapshot) (*Flow, error) {
	f := &Flow{info: info, snap: snap, tables: map[string]metric.MeasurementOption{}, parts: map[string]*partSpan{}, rootCtx: ctx}
	f.flowSet = attribute.NewSet(attribute.String("flow", info.Name))
	if t != nil && t.meters != nil {
		if err := f.instruments(t.meters.Meter(scope)); err != nil {
			return nil, err
		}
	}
	if t != nil && t.tracer != nil {
		f.tracer = t.tracer.Tracer(scope)
		if info.Worker {
			return f, nil
		}
		f.rootCtx, f.root = f.tracer.Start(ctx, "ferry.flow", trace.WithAttributes(
			attribute.String("ferry.flow", info.Name), attribute.String("ferry.mode", info.Mode),
			attribute.String("ferry.coordinator", info.Coordinator)))
	}
	return f, nil
}

func (f *Flow) instruments(m metric.Meter) error {
	var err error
	counter := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	f.rowsRead = counter("ferry.rows.read", "{row}", "Rows read from the source by the copy, per table.")
	f.rowsWritten = counter("ferry.rows.written", "{row}", "Rows the destination confirmed during the copy, per table (this run).")
	f.bytesRead = counter("ferry.read", "By", "Bytes read from the source by the copy, per table, as the source sizes its rows.")
	f.bytesWritten = counter("ferry.written", "By", "Bytes the destination confirmed during the copy, per table.")
	f.changesApplied = counter("ferry.cdc.changes.applied", "{change}", "Changes applied to the destination by CDC, after folding.")
	f.errorsTotal = counter("ferry.errors", "{error}", "Errors that ended a run.")
	f.retries = counter("ferry.retries", "{retry}", "Retried steps; single-process mode does not retry (a rerun resumes), so this stays 0.")
	if err != nil {
		return err
	}
	if f.writeLatency, err = m.Float64Histogram("ferry.batch.write.duration", metric.WithUnit("s"),
		metric.WithDescription("Time the destination took to write one copy batch, per table."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return err
	}
	if f.applyLatency, err = m.Float64Histogram("ferry.cdc.apply.duration", metric.WithUnit("s"),
		metric.WithDescription("Time the destination took for one CDC apply call (one writer's share of a batch)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return err
	}

	received, err := m.Int64ObservableCounter("ferry.cdc.changes.received", metric.WithUnit("{change}"),
		metric.WithDescription("Changes taken from the source by CDC, before folding."))
	if err != nil {
		return err
	}
	schemaChanges, err := m.Int64ObservableCounter("ferry.cdc.schema.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Schema changes and truncates of the source that CDC followed at the destination."))
	if err != nil {
		return err
	}
	heldPeak, err := m.Int64ObservableGauge("ferry.cdc.changes.held.peak", metric.WithUnit("{change}"),
		metric.WithDescription("The most changes one apply batch held at once in this run: what a huge source transaction costs in memory under --apply-mode transactional."))
	if err != nil {
		return err
	}
	lag, err := m.Float64ObservableGauge("ferry.cdc.lag", metric.WithUnit("s"),
		metric.WithDescription("Age of the last applied source commit when it was applied; absent until known."))
	if err != nil {
		return err
	}
	lagBytes, err := m.Int64ObservableGauge("ferry.cdc.lag.bytes", metric.WithUnit("By"),
		metric.WithDescription("How far the applied position is behind the source's head, in bytes of its log (WAL); absent when the source cannot tell."))
	if err != nil {
		return err
	}
	slotRetained, err := m.Int64ObservableGauge("ferry.source.slot.retained", metric.WithUnit("By"),
		metric.WithDescription("Log the source keeps for the flow (a PostgreSQL slot's WAL); absent when the source cannot tell."))
	if err != nil {
		return err
	}
	slotSafe, err := m.Int64ObservableGauge("ferry.source.slot.safe", metric.WithUnit("By"),
		metric.WithDescription("How much more log may be written before the source drops what the flow needs (a PostgreSQL slot's safe_wal_size under max_slot_wal_keep_size); absent without a limit."))
	if err != nil {
		return err
	}
	backoff, err := m.Float64ObservableCounter("ferry.source.backoff", metric.WithUnit("s"),
		metric.WithDescription("Time the flow's table reads paused while the source's replicas lagged past --max-replica-lag; absent when it is off."))
	if err != nil {
		return err
	}
	backingOff, err := m.Int64ObservableGauge("ferry.source.backing_off",
		metric.WithDescription("1 while table reads pause for the source's replicas' lag (--max-replica-lag), else 0; absent when it is off."))
	if err != nil {
		return err
	}
	partitions, err := m.Int64ObservableGauge("ferry.partitions", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions per table by state: pending, running, done."))
	if err != nil {
		return err
	}
	copied, err := m.Int64ObservableGauge("ferry.table.rows.copied", metric.WithUnit("{row}"),
		metric.WithDescription("Rows at the destination per table, including earlier runs of the flow."))
	if err != nil {
		return err
	}
	estimated, err := m.Int64ObservableGauge("ferry.table.rows.estimated", metric.WithUnit("{row}"),
		metric.WithDescription("The source's row estimate per table."))
	if err != nil {
		return err
	}
	resumed, err := m.Int64ObservableCounter("ferry.partitions.resumed", metric.WithUnit("{partition}"),
		metric.WithDescription("Partitions this run resumed from a mid-way cursor left by an interrupted run."))
	if err != nil {
		return err
	}
	verifyRows, err := m.Int64ObservableCounter("ferry.verify.rows.checked", metric.WithUnit("{row}"),
		metric.WithDescription("Rows read on both sides by the background verification per table (ferry sync --verify)."))
	if err != nil {
		return err
	}
	verifyKeys, err := m.Int64ObservableGauge("ferry.verify.keys", metric.WithUnit("{key}"),
		metric.WithDescription("Keys per table the background verification found differing, by state: rechecking (waiting for the flow to pass them), pending (their source rows kept changing), different (persistent differences)."))
	if err != nil {
		return err
	}
	phase, err := m.Int64ObservableGauge("ferry.flow.phase",
		metric.WithDescription("1 for the phase the flow is in (plan, copy, cdc, cutover, done, stopped, failed)."))
	if err != nil {
		return err
	}
	flowOpt := metric.WithAttributeSet(f.flowSet)
	f.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if f.snap == nil {
			return nil
		}
		s := f.snap()
		o.ObserveInt64(received, s.CDC.Received, flowOpt)
		o.ObserveInt64(schemaChanges, s.CDC.SchemaChanges, flowOpt)
		o.ObserveInt64(heldPeak, s.CDC.HeldPeak, flowOpt)
		o.ObserveInt64(resumed, s.ResumedPartitions, flowOpt)
		if s.CDC.LagSeconds >= 0 {
			o.ObserveFloat64(lag, s.CDC.LagSeconds, flowOpt)
		}
		if s.CDC.LagBytes != nil {
			o.ObserveInt64(lagBytes, *s.CDC.LagBytes, flowOpt)
		}
		if s.CDC.SlotRetainedBytes != nil {
			o.ObserveInt64(slotRetained, *s.CDC.SlotRetainedBytes, flowOpt)
		}
		if s.CDC.SlotSafeBytes != nil {
			o.ObserveInt64(slotSafe, *s.CDC.SlotSafeBytes, flowOpt)
		}
		if b := s.Backoff; b != nil {
			o.ObserveFloat64(backoff, b.SecondsTotal, flowOpt)
			on := int64(0)
			if b.BackingOff {
				on = 1
			}
			o.ObserveInt64(backingOff, on, flowOpt)
		}
		o.ObserveInt64(phase, 1, metric.WithAttributes(attribute.String("flow", f.info.Name), attribute.String("phase", string(s.Phase))))
		for _, t := range s.Tables {
			opt := f.tableOpt(t.Table)
			o.ObserveInt64(copied, t.RowsCopied, opt)
			o.ObserveInt64(estimated, t.RowsEstimated, opt)
			pending := max(t.Partitions-t.PartitionsDone-t.PartitionsRunning, 0)
			for _, st := range []struct {
				state string
				n     int64
			}{{"pending", pending}, {"running", t.PartitionsRunning}, {"done", t.PartitionsDone}} {
				o.ObserveInt64(partitions, st.n, metric.WithAttributes(attribute.String("flow", f.info.Name),
					attribute.String("table", t.Table), attribute.String("state", st.state)))
			}
			if v := t.Verify; v != nil {
				o.ObserveInt64(verifyRows, v.RowsChecked, opt)
				for _, st := range []struct {
					state string
					n     int
				}{{"rechecking", v.Rechecking}, {"pending", v.Pending}, {"different", v.Different}} {
					o.ObserveInt64(verifyKeys, int64(st.n), metric.WithAttributes(attribute.String("flow", f.info.Name),
						attribute.String("table", t.Table), attribute.String("state", st.state)))
				}
			}
		}
		return nil
	}, received, schemaChanges, heldPeak, lag, lagBytes, slotRetained, slotSafe, backoff, backingOff, partitions, copied, estimated, resumed, phase, verifyRows, verifyKeys)
	if err != nil {
		return err
	}
	// Exported from the start, so a dashboard can tell "no retries" from
	// "no data".
	f.retries.Add(context.Background(), 0, flowOpt)
	f.errorsTotal.Add(context.Background(), 0, flowOpt)
	return nil
}

// tableOpt is the measurement option carrying the flow's and a table's
// attributes, built once per table.
func (f *Flow) tableOpt(table string) metric.MeasurementOption {
	f.tablesMu.RLock()
	opt, ok := f.tables[table]
	f.tablesMu.RUnlock()
	if ok {
		return opt
	}
	opt = metric.WithAttributeSet(attribute.NewSet(attribute.String("flow", f.info.Name), attribute.String("table", table)))
	f.tablesMu.Lock()
	f.tables[table] = opt
	f.tablesMu.Unlock()
	return opt
}

var _ engine.Observer = (*Flow)(nil)

// PartitionStarted opens the partition's span.
func (f *Flow) PartitionStarted(table, partition string) {
	if f.tracer == nil {
		return
	}
	_, span := f.tracer.Start(f.rootCtx, "ferry.partition", trace.WithAttributes(
		attribute.String("ferry.table", table), attribute.String("ferry.partition", partition)))
	f.spansMu.Lock()
	if f.ended {
		f.spansMu.Unlock()
		span.End()
		return
	}
	f.parts[partition] = &partSpan{span: span}
	f.spansMu.Unlock()
}

// BatchRead counts rows and bytes read.
func (f *Flow) BatchRead(table string, rows, bytes int64) {
	if f.rowsRead == nil {
		return
	}
	opt := f.tableOpt(table)
	ctx := context.Background()
	f.rowsRead.Add(ctx, rows, opt)
	f.bytesRead.Add(ctx, bytes, opt)
}

// BatchWritten counts rows and bytes written and records the latency.
func (f *Flow) BatchWritten(table, partition string, rows, bytes int64, d time.Duration) {
	if f.rowsWritten != nil {
		opt := f.tableOpt(table)
		ctx := context.Background()
		f.rowsWritten.Add(ctx, rows, opt)
		f.bytesWritten.Add(ctx, bytes, opt)
		f.writeLatency.Record(ctx, d.Seconds(), opt)
	}
	if f.tracer != nil {
		f.spansMu.Lock()
		if p := f.parts[partition]; p != nil {
			p.rows += rows
		}
		f.spansMu.Unlock()
	}
}

// PartitionDone ends the partition's span.
func (f *Flow) PartitionDone(table, partition string) {
	if f.tracer == nil {
		return
	}
	f.spansMu.Lock()
	p := f.parts[partition]
	delete(f.parts, partition)
	f.spansMu.Unlock()
	if p != nil {
		p.span.SetAttributes(attribute.Int64("ferry.rows", p.rows))
		p.span.SetStatus(codes.Ok, "")
		p.span.End()
	}
}

// ChangesApplied counts applied changes and records the latency; a
// non-empty apply call also gets a span.
func (f *Flow) ChangesApplied(n int, d time.Duration) {
	ctx := context.Background()
	if f.changesApplied != nil {
		opt := metric.WithAttributeSet(f.flowSet)
		f.changesApplied.Add(ctx, int64(n), opt)
		f.applyLatency.Record(ctx, d.Seconds(), opt)
	}
	if f.tracer != nil && n > 0 {
		end := time.Now()
		_, span := f.tracer.Start(f.rootCtx, "ferry.cdc.apply", trace.WithTimestamp(end.Add(-d)),
			trace.WithAttributes(attribute.Int("ferry.changes", n)))
		span.End(trace.WithTimestamp(end))
	}
}

// Error counts the error that ended the run and marks the root span.
func (f *Flow) Error(err error) {
	if f.errorsTotal != nil {
		f.errorsTotal.Add(context.Background(), 1, metric.WithAttributeSet(f.flowSet))
	}
	if f.root != nil {
		f.spansMu.Lock()
		f.failed = true
		f.spansMu.Unlock()
		f.recordError(f.root, err)
	}
}

// recordError marks a span failed with err's message, scrubbed.
func (f *Flow) recordError(span trace.Span, err error) {
	msg := err.Error()
	if f.info.Scrub != nil {
		msg = f.info.Scrub(msg)
	}
	span.AddEvent("exception", trace.WithAttributes(attribute.String("exception.message", msg)))
	span.SetStatus(codes.Error, msg)
}

// Span starts a child span of the flow (such as "ferry.plan"); the returned
// function ends it, marking it failed when err is not nil.
func (f *Flow) Span(name string) (end func(err error)) {
	if f.tracer == nil {
		return func(error) {}
	}
	_, span := f.tracer.Start(f.rootCtx, name)
	return func(err error) {
		if err != nil {
			f.recordError(span, err)
		}
		span.End()
	}
}

// End ends the flow's spans: partitions still open were interrupted (by a
// stop or the error err), then the root. Metrics keep being served.
func (f *Flow) End(err error) {
	if f.tracer == nil {
		return
	}
	f.spansMu.Lock()
	parts := f.parts
	f.parts = map[string]*partSpan{}
	f.ended = true
	failed := f.failed
	f.spansMu.Unlock()
	for _, p := range parts {
		p.span.SetAttributes(attribute.Int64("ferry.rows", p.rows), attribute.Bool("ferry.interrupted", true))
		if err != nil {
			p.span.SetStatus(codes.Error, "the flow failed")
		}
		p.span.End()
	}
	if f.root == nil {
		return
	}
	if err != nil && !failed {
		f.recordError(f.root, err)
	}
	f.root.End()
}
