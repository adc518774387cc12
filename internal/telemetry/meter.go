package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Meter is a meter of the process's provider, for instruments outside a
// flow (the Temporal SDK's metrics on a worker). Without exporters it
// records nothing.
func (t *Telemetry) Meter(scope string) metric.Meter {
	if t == nil || t.meters == nil {
		return noop.NewMeterProvider().Meter(scope)
	}
	return t.meters.Meter(scope)
}
