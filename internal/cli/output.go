package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferrydb/ferry/internal/dashboard"
	"github.com/ferrydb/ferry/internal/display"
)

// What sync and run show of a flow, set up the same way by both: the
// --progress display, the logger and the --ui dashboard.

// uiFlags are the dashboard's flags, and ferry sync's --health-addr.
type uiFlags struct {
	addr, token string
	linger      time.Duration
	// health serves /healthz, /readyz and /metrics without the dashboard,
	// as ferry worker --health-addr does.
	health string
}

func (u *uiFlags) registerHealth(fs *pflag.FlagSet) {
	fs.StringVar(&u.health, "health-addr", "", "serve /healthz, /readyz and Prometheus /metrics on HOST:PORT (such as 127.0.0.1:9090), without the dashboard")
}

func (u *uiFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&u.addr, "ui", "", "serve the live dashboard, its JSON API and Prometheus /metrics on HOST:PORT (such as 127.0.0.1:8080; port 0 picks a free one)")
	fs.StringVar(&u.token, "ui-token", "", "token every dashboard request must carry (default $"+dashboard.TokenEnv+"); required to bind beyond loopback")
	fs.DurationVar(&u.linger, "ui-linger", 0, "keep serving the dashboard this long after the flow ends (Ctrl-C ends it sooner)")
}

// tokenFromEnv takes the dashboard's token from the environment when
// --ui-token is not given.
func (u *uiFlags) tokenFromEnv() {
	if u.token == "" {
		u.token = os.Getenv(dashboard.TokenEnv)
	}
}

// checkProgress refuses a --progress value that is not one of the displays.
func checkProgress(progress string) error {
	switch progress {
	case "auto", "bars", "log", "none":
		return nil
	}
	return usageError{fmt.Errorf("--progress %q: use auto, bars, log or none", progress)}
}

// output is a command's progress bars (nil when not shown), its logger
// (writing above the bars) and the --ui listener (nil without --ui).
type output struct {
	bars *display.Bars
	log  *slog.Logger
	ln   net.Listener
}

// openOutput listens on --ui first, so a taken address fails before anything
// is shown, then starts the bars when they are wanted (--progress bars, or
// auto on a terminal; never when barsOK is false) and the logger.
func openOutput(ctx context.Context, g *globals, ui uiFlags, progress string, barsOK bool) (*output, error) {
	o := &output{}
	if ui.addr != "" {
		if err := dashboard.CheckBind(ui.addr, ui.token); err != nil {
			return nil, usageError{err}
		}
		ln, err := net.Listen("tcp", ui.addr)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ui %s: %w", ui.addr, err)}
		}
		o.ln = ln
	}
	logOut := g.stderr
	if barsOK && (progress == "bars" || (progress == "auto" && display.IsTerminal(os.Stderr))) {
		o.bars = display.NewBars(ctx, g.stderr)
		logOut = o.bars.Writer()
	}
	log, err := g.logger(logOut)
	if err != nil {
		o.close()
		return nil, err
	}
	o.log = log
	return o, nil
}

// close stops the bars, then the listener.
func (o *output) close() {
	if o.bars != nil {
		o.bars.Close()
	}
	if o.ln != nil {
		o.ln.Close() //nolint:errcheck // closed by the server's shutdown already
	}
}

// serveDashboard serves the dashboard on ln and logs its URL, which it
// returns. On every interface, the URL names this machine's loopback: it
// works here, and the address says what else can reach it.
func serveDashboard(ln net.Listener, info dashboard.Info, ui uiFlags, metrics http.Handler, log *slog.Logger) (*dashboard.Server, string) {
	dash := dashboard.New(dashboard.Options{Info: info, Token: ui.token, Metrics: metrics, Log: log})
	dash.Serve(ln)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/"
	log.Info("dashboard listening", "url", url, "address", ln.Addr().String(), "token", ui.token != "")
	return dash, url
}

// closeDash stops serving the dashboard, giving open requests 2s.
func closeDash(ctx context.Context, dash *dashboard.Server, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := dash.Close(cctx); err != nil {
		log.Warn("dashboard shutdown", "error", err)
	}
}
