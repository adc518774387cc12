package scaleout

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"
)

// MetricsHandler reports the Temporal SDK's own metrics (polls, task
// latencies, activity failures, ...) through an OpenTelemetry meter, so a
// worker's /metrics shows them beside ferry's.
func MetricsHandler(m metric.Meter) client.MetricsHandler {
	return &otelHandler{r: &instruments{meter: m, counters: map[string]metric.Int64Counter{},
		gauges: map[string]metric.Float64Gauge{}, timers: map[string]metric.Float64Histogram{}}}
}

type instruments struct {
	meter    metric.Meter
	mu       sync.Mutex
	counters map[string]metric.Int64Counter
	gauges   map[string]metric.Float64Gauge
	timers   map[string]metric.Float64Histogram
}

type otelHandler struct {
	r     *instruments
	attrs []attribute.KeyValue
}

func (h *otelHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := map[string]string{}
	for _, a := range h.attrs {
		merged[string(a.Key)] = a.Value.AsString()
	}
	for k, v := range tags {
		merged[k] = v
	}
	attrs := make([]attribute.KeyValue, 0, len(merged))
	for k, v := range merged {
		attrs = append(attrs, attribute.String(k, v))
	}
	return &otelHandler{r: h.r, attrs: attrs}
}

func name(n string) string { return strings.ReplaceAll(n, ".", "_") }

func (h *otelHandler) Counter(n string) client.MetricsCounter {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	c, ok := h.r.counters[n]
	if !ok {
		var err error
		if c, err = h.r.meter.Int64Counter(name(n)); err != nil {
			return client.MetricsNopHandler.Counter(n)
		}
		h.r.counters[n] = c
	}
	return counter{c: c, h: h}
}

func (h *otelHandler) Gauge(n string) client.MetricsGauge {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	g, ok := h.r.gauges[n]
	if !ok {
		var err error
		if g, err = h.r.meter.Float64Gauge(name(n)); err != nil {
			return client.MetricsNopHandler.Gauge(n)
		}
		h.r.gauges[n] = g
	}
	return gauge{g: g, h: h}
}

func (h *otelHandler) Timer(n string) client.MetricsTimer {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	t, ok := h.r.timers[n]
	if !ok {
		var err error
		if t, err = h.r.meter.Float64Histogram(name(n)+"_seconds", metric.WithUnit("s")); err != nil {
			return client.MetricsNopHandler.Timer(n)
		}
		h.r.timers[n] = t
	}
	return timer{t: t, h: h}
}

type counter struct {
	c metric.Int64Counter
	h *otelHandler
}

func (c counter) Inc(n int64) {
	c.c.Add(context.Background(), n, metric.WithAttributeSet(attribute.NewSet(c.h.attrs...)))
}

type gauge struct {
	g metric.Float64Gauge
	h *otelHandler
}

func (g gauge) Update(v float64) {
	g.g.Record(context.Background(), v, metric.WithAttributeSet(attribute.NewSet(g.h.attrs...)))
}

type timer struct {
	t metric.Float64Histogram
	h *otelHandler
}

func (t timer) Record(d time.Duration) {
	t.t.Record(context.Background(), d.Seconds(), metric.WithAttributeSet(attribute.NewSet(t.h.attrs...)))
}
