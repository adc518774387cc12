// Package telemetry turns what the engine reports into OpenTelemetry metrics
// and traces: a MeterProvider read by a Prometheus exporter (served as
// /metrics by the dashboard) and, when the standard OTEL_EXPORTER_OTLP_*
// variables are set, pushed over OTLP/HTTP; a TracerProvider exporting spans
// for the plan, each partition copy and each CDC apply call over OTLP/HTTP.
//
// Nothing is set up when neither is asked for: the engine then keeps its
// no-op observer and pays nothing. The engine does not import OpenTelemetry;
// this package implements its Observer interface.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ferrydb/ferry/errs"
)

// Options says which exporters to start.
type Options struct {
	// Prometheus makes Handler serve every metric in the Prometheus text
	// format (with the Go runtime's and the process's own).
	Prometheus bool
	// Version is ferry's version, the resource's service.version.
	Version string
	// Log receives the exporters' own errors (an unreachable collector) as
	// warnings; nil discards them.
	Log *slog.Logger
}

// Telemetry holds the providers of one process. The zero value and nil are
// valid and export nothing.
type Telemetry struct {
	meters  *sdkmetric.MeterProvider
	tracer  *sdktrace.TracerProvider
	handler http.Handler

	// OTLPMetrics and OTLPTraces say whether metrics and spans are pushed
	// over OTLP.
	OTLPMetrics, OTLPTraces bool
}

// Setup starts the exporters opts and the environment ask for. A bad
// OTEL_* setting is a configuration error.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	getenv := os.Getenv // the exporters read the same variables themselves
	t := &Telemetry{}
	var err error
	if t.OTLPMetrics, err = otlpWanted(getenv, "METRICS"); err != nil {
		return nil, err
	}
	if t.OTLPTraces, err = otlpWanted(getenv, "TRACES"); err != nil {
		return nil, err
	}
	if !opts.Prometheus && !t.OTLPMetrics && !t.OTLPTraces {
		return t, nil
	}
	if opts.Log != nil {
		log := opts.Log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry export failed", "error", err) }))
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "ferry"), attribute.String("service.version", opts.Version)),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	var readers []sdkmetric.Option
	if opts.Prometheus {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		readers = append(readers, sdkmetric.WithReader(exp))
		t.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if t.OTLPMetrics {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, configError("OTLP metrics exporter", err)
		}
		// The interval honours OTEL_METRIC_EXPORT_INTERVAL (default 60s).
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if len(readers) > 0 {
		t.meters = sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
	}
	if t.OTLPTraces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, configError("OTLP trace exporter", err)
		}
		// The sampler honours OTEL_TRACES_SAMPLER (default: every span).
		t.tracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	}
	return t, nil
}

// otlpWanted reads the standard variables for one signal (METRICS or
// TRACES): an endpoint turns OTLP on, OTEL_<SIGNAL>_EXPORTER=none or
// OTEL_SDK_DISABLED=true turn it off. Only OTLP over HTTP is built in.
func otlpWanted(getenv func(string) string, signal string) (bool, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	if v := strings.TrimSpace(getenv("OTEL_" + signal + "_EXPORTER")); v != "" {
		for _, e := range strings.Split(v, ",") {
			if strings.TrimSpace(e) == "none" {
				return false, nil
			}
		}
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") == "" {
		return false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(k); p != "" {
			if p != "http/protobuf" {
				return false, &errs.ConfigError{Msg: fmt.Sprintf("%s=%s: ferry exports OTLP over HTTP only", k, p),
					Fix: "set it to http/protobuf and point the endpoint at the collector's OTLP/HTTP port (usually 4318)"}
			}
			break
		}
	}
	return true, nil
}

func configError(what string, err error) error {
	return &errs.ConfigError{Msg: fmt.Sprintf("%s: %v", what, err), Fix: "check the OTEL_EXPORTER_OTLP_* environment variables"}
}

// Enabled reports whether anything is exported.
func (t *Telemetry) Enabled() bool { return t != nil && (t.meters != nil || t.tracer != nil) }

// Handler serves the metrics in the Prometheus text format; nil unless
// Options.Prometheus.
func (t *Telemetry) Handler() http.Handler {
	if t == nil {
		return nil
	}
	return t.handler
}

// Shutdown flushes what is buffered (the last metrics and spans) to the OTLP
// collector and stops the providers. It waits at most until ctx is done.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	if t.tracer != nil {
		if err := t.tracer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush traces: %w", err))
		}
	}
	if t.meters != nil {
		if err := t.meters.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}
