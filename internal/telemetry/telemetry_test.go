package telemetry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/fake"
	_ "github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/telemetry"
	"github.com/ferrydb/ferry/state"
)

// runFlow runs cfg in this process with the telemetry's observer, the way
// ferry sync wires it, and returns the engine.
func runFlow(t *testing.T, tel *telemetry.Telemetry, cfg flow.Config) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	cfg.StateDir = t.TempDir()
	store, err := state.Open(ctx, cfg.StateDir, cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := tel.Flow(ctx, telemetry.FlowInfo{Name: eng.Name(), Mode: string(eng.Mode()), Coordinator: "local"}, eng.Progress().Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	eng.SetObserver(f)
	endPlan := f.Span("ferry.plan")
	err = eng.Prepare(ctx)
	endPlan(err)
	if err == nil {
		err = eng.Run(ctx, ctx)
	}
	f.End(err)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestPrometheusAfterAFlow(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if tel.OTLPMetrics || tel.OTLPTraces {
		t.Fatal("OTLP is on without any OTEL_EXPORTER_OTLP_* variable")
	}
	eng := runFlow(t, tel, flow.Config{Source: "fake://?tables=2&rows=3000&changes=800", Destination: "null://",
		Until: "caught-up", Parallel: 2, PartitionRows: 1000})
	name := eng.Name()
	out := scrape(t, tel.Handler())
	for _, want := range []string{
		`ferry_rows_read_total{flow="` + name + `",table="fake.t1"} 3000`,
		`ferry_rows_written_total{flow="` + name + `",table="fake.t2"} 3000`,
		`ferry_read_bytes_total{flow="` + name + `",table="fake.t1"}`,
		`ferry_written_bytes_total{flow="` + name + `",table="fake.t2"}`,
		`ferry_batch_write_duration_seconds_bucket{flow="` + name + `",table="fake.t1",le="+Inf"} 3`,
		`ferry_batch_write_duration_seconds_count{flow="` + name + `",table="fake.t2"} 3`,
		`ferry_partitions{flow="` + name + `",state="done",table="fake.t1"} 3`,
		`ferry_partitions{flow="` + name + `",state="pending",table="fake.t1"} 0`,
		`ferry_partitions{flow="` + name + `",state="running",table="fake.t2"} 0`,
		`ferry_table_rows_copied{flow="` + name + `",table="fake.t2"} 3000`,
		`ferry_table_rows_estimated{flow="` + name + `",table="fake.t2"} 3000`,
		`ferry_cdc_changes_received_total{flow="` + name + `"} 800`,
		`ferry_cdc_schema_changes_total{flow="` + name + `"} 0`,
		`ferry_cdc_changes_held_peak{flow="` + name + `"}`,
		`ferry_cdc_changes_applied_total{flow="` + name + `"}`,
		`ferry_cdc_apply_duration_seconds_count{flow="` + name + `"}`,
		`ferry_cdc_lag_seconds{flow="` + name + `"}`,
		`ferry_flow_phase{flow="` + name + `",phase="done"} 1`,
		`ferry_errors_total{flow="` + name + `"} 0`,
		`ferry_retries_total{flow="` + name + `"} 0`,
		`ferry_partitions_resumed_total{flow="` + name + `"} 0`,
		`go_goroutines`,
		`target_info{`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Log(out)
	}
}

func TestNothingIsSetUpByDefault(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tel.Enabled() || tel.Handler() != nil {
		t.Fatal("telemetry enabled without --ui or OTEL_EXPORTER_OTLP_*")
	}
	// A flow of a disabled telemetry is still a valid observer.
	runFlow(t, tel, flow.Config{Source: "fake://?tables=1&rows=100", Destination: "null://", Mode: flow.ModeSnapshot})
}

func TestOTLPConfiguration(t *testing.T) {
	for _, tc := range []struct {
		env             map[string]string
		metrics, traces bool
		configErr       bool
	}{
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, metrics: true, traces: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:1/v1/metrics"}, metrics: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, traces: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}, metrics: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, configErr: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, metrics: true, traces: true},
	} {
		for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
			"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
			t.Setenv(k, tc.env[k])
		}
		tel, err := telemetry.Setup(context.Background(), telemetry.Options{})
		if tc.configErr {
			if !errs.IsConfigError(err) {
				t.Errorf("%v: got %v, want a configuration error", tc.env, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if tel.OTLPMetrics != tc.metrics || tel.OTLPTraces != tc.traces {
			t.Errorf("%v: metrics %v traces %v, want %v %v", tc.env, tel.OTLPMetrics, tel.OTLPTraces, tc.metrics, tc.traces)
		}
		tel.Shutdown(context.Background()) //nolint:errcheck // nothing was exported
	}
}

// collector is an OTLP/HTTP receiver keeping what it is sent.
type collector struct {
	mu      sync.Mutex
	spans   []string // span names
	metrics map[string]bool
	raw     []byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, body...)
	switch r.URL.Path {
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, s.Name)
				}
			}
		}
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	case "/v1/metrics":
		var req colmetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					c.metrics[m.Name] = true
				}
			}
		}
		b, _ := proto.Marshal(&colmetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

func TestOTLPExportsSpansAndMetrics(t *testing.T) {
	col := &collector{metrics: map[string]bool{}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.OTLPMetrics || !tel.OTLPTraces || tel.Handler() != nil {
		t.Fatalf("OTLP metrics %v traces %v, prometheus %v", tel.OTLPMetrics, tel.OTLPTraces, tel.Handler() != nil)
	}
	runFlow(t, tel, flow.Config{Source: "fake://?tables=2&rows=2000&changes=300", Destination: "null://",
		Until: "caught-up", Parallel: 2, PartitionRows: 1000})
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	count := map[string]int{}
	for _, s := range col.spans {
		count[s]++
	}
	if count["ferry.flow"] != 1 || count["ferry.plan"] != 1 || count["ferry.partition"] != 4 || count["ferry.cdc.apply"] == 0 {
		t.Errorf("spans: %v; want one flow, one plan, 4 partitions, some CDC apply calls", count)
	}
	for _, m := range []string{"ferry.rows.written", "ferry.batch.write.duration", "ferry.cdc.changes.applied", "ferry.partitions"} {
		if !col.metrics[m] {
			t.Errorf("metric %s was not exported; got %v", m, col.metrics)
		}
	}
}

// An error that ends the run reaches the root span scrubbed.
func TestErrorIsCountedAndScrubbed(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	f, err := tel.Flow(context.Background(), telemetry.FlowInfo{Name: "f", Scrub: func(s string) string { return strings.ReplaceAll(s, "hunter2", "xxxxx") }},
		func() engine.Snapshot {
			return engine.Snapshot{Phase: engine.PhaseFailed, CDC: engine.CDCSnapshot{LagSeconds: -1}}
		})
	if err != nil {
		t.Fatal(err)
	}
	f.Error(errors.New("connect to db://u:hunter2@h failed"))
	f.End(errors.New("connect to db://u:hunter2@h failed"))
	out := scrape(t, tel.Handler())
	if !strings.Contains(out, `ferry_errors_total{flow="f"} 1`) {
		t.Errorf("errors not counted:\n%s", out)
	}
	if strings.Contains(out, "ferry_cdc_lag_seconds{") {
		t.Error("an unknown lag is exported")
	}
	if strings.Contains(out, "hunter2") {
		t.Error("/metrics shows the password")
	}
}

// Only the phase the flow is in is reported, not every phase it went through.
func TestPhaseGaugeFollowsThePhase(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	var mu sync.Mutex
	phase := engine.PhaseCopy
	_, err = tel.Flow(context.Background(), telemetry.FlowInfo{Name: "f"}, func() engine.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		return engine.Snapshot{Phase: phase, CDC: engine.CDCSnapshot{LagSeconds: -1}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := scrape(t, tel.Handler()); !strings.Contains(out, `ferry_flow_phase{flow="f",phase="copy"} 1`) {
		t.Fatalf("copy phase missing:\n%s", out)
	}
	mu.Lock()
	phase = engine.PhaseCDC
	mu.Unlock()
	out := scrape(t, tel.Handler())
	if !strings.Contains(out, `ferry_flow_phase{flow="f",phase="cdc"} 1`) || strings.Contains(out, `phase="copy"`) {
		t.Fatalf("after the copy, /metrics reports:\n%s", out)
	}
}

func TestLogObserver(t *testing.T) {
	if telemetry.LogObserver(slog.New(slog.NewTextHandler(io.Discard, nil))) != nil {
		t.Fatal("a log observer at info level costs the engine a call per batch")
	}
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := telemetry.LogObserver(log.With("flow", "f"))
	o.PartitionStarted("s.t", "s.t/0001")
	o.BatchWritten("s.t", "s.t/0001", 10, 100, time.Millisecond)
	o.PartitionDone("s.t", "s.t/0001")
	if !strings.Contains(b.String(), `"msg":"partition copied","flow":"f","table":"s.t","partition":"s.t/0001","rows":10`) {
		t.Fatalf("log: %s", b.String())
	}
}

// The lag in bytes is exported when the source measures it, and absent
// when it cannot (null in the snapshot).
func TestLagBytesGauge(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	var mu sync.Mutex
	var lag *int64
	_, err = tel.Flow(context.Background(), telemetry.FlowInfo{Name: "f"}, func() engine.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		return engine.Snapshot{Phase: engine.PhaseCDC, CDC: engine.CDCSnapshot{LagSeconds: 0.5, LagBytes: lag}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := scrape(t, tel.Handler()); strings.Contains(out, "ferry_cdc_lag_bytes{") {
		t.Fatalf("an unknown lag in bytes is exported:\n%s", out)
	}
	mu.Lock()
	n := int64(123456)
	lag = &n
	mu.Unlock()
	if out := scrape(t, tel.Handler()); !strings.Contains(out, `ferry_cdc_lag_bytes{flow="f"} 123456`) {
		t.Fatalf("lag in bytes missing:\n%s", out)
	}
}

// TestPrometheusSlotRetention: what the source keeps for the flow (a
// PostgreSQL slot's WAL) and how much more it may keep are gauges, absent
// while the source has not told.
func TestPrometheusSlotRetention(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	retained, safe := int64(60<<20), int64(4<<20)
	var known bool
	f, err := tel.Flow(context.Background(), telemetry.FlowInfo{Name: "slotflow", Mode: "cdc", Coordinator: "local"}, func() engine.Snapshot {
		s := engine.Snapshot{Flow: "slotflow", Phase: engine.PhaseCDC, CDC: engine.CDCSnapshot{LagSeconds: -1}}
		if known {
			s.CDC.SlotRetainedBytes, s.CDC.SlotSafeBytes = &retained, &safe
		}
		return s
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.End(nil)
	if out := scrape(t, tel.Handler()); strings.Contains(out, "ferry_source_slot_retained_bytes{") {
		t.Fatalf("a slot gauge before the source measured anything:\n%s", out)
	}
	known = true
	out := scrape(t, tel.Handler())
	for _, want := range []string{`ferry_source_slot_retained_bytes{flow="slotflow"} 6.291456e+07`, `ferry_source_slot_safe_bytes{flow="slotflow"} 4.194304e+06`} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPrometheusSourceBackoff: the time table reads paused for the
// source's replicas' lag is a counter in seconds and whether they pause
// now a gauge, both absent while --max-replica-lag is off.
func TestPrometheusSourceBackoff(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Prometheus: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	var on bool
	f, err := tel.Flow(context.Background(), telemetry.FlowInfo{Name: "guest", Mode: "full", Coordinator: "local"}, func() engine.Snapshot {
		s := engine.Snapshot{Flow: "guest", Phase: engine.PhaseCopy, CDC: engine.CDCSnapshot{LagSeconds: -1}}
		if on {
			s.Backoff = &engine.BackoffSnapshot{MaxReplicaLagSeconds: 30, ReplicaLagSeconds: 95, BackingOff: true, SecondsTotal: 12.5}
		}
		return s
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.End(nil)
	if out := scrape(t, tel.Handler()); strings.Contains(out, "ferry_source_backoff") {
		t.Fatalf("backoff metrics without --max-replica-lag:\n%s", out)
	}
	on = true
	out := scrape(t, tel.Handler())
	for _, want := range []string{`ferry_source_backoff_seconds_total{flow="guest"} 12.5`, `ferry_source_backing_off{flow="guest"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
