package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ferrydb/ferry/internal/telemetry"
)

// serveHealth serves /healthz, /readyz and (when telemetry has a
// Prometheus exporter) /metrics on ln, for ferry worker and ferry sync
// --health-addr. notReady is what /readyz says while ready is false. The
// returned function stops serving.
func serveHealth(ln net.Listener, ready *atomic.Bool, tel *telemetry.Telemetry, notReady string, log *slog.Logger) func(context.Context) {
	srv := &http.Server{Handler: healthMux(ready, tel, notReady), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("health server stopped", "error", err)
		}
	}()
	return func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx) //nolint:errcheck // exiting
	}
}

func healthMux(ready *atomic.Bool, tel *telemetry.Telemetry, notReady string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, notReady, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if h := tel.Handler(); h != nil {
		mux.Handle("/metrics", h)
	}
	return mux
}
