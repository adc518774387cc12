package check

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// LoadCompose loads a compose file the way `docker compose config` does:
// interpolation with env only (never the caller's environment or a .env
// file, so the result does not depend on the machine), the compose
// specification's JSON schema, and its consistency checks, with every
// profile enabled so optional services are checked too.
func LoadCompose(ctx context.Context, file string, env map[string]string) (*types.Project, error) {
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(list),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return nil, err
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	return p, nil
}

// ComposePolicy holds what CheckCompose compares the project with.
type ComposePolicy struct {
	Repo     string // the repository root, the build context of ferry's image
	Flags    func(string) (map[string]bool, error)
	EnvNames map[string]bool // from EnvNames
}

// CheckCompose checks what the compose schema cannot: ferry's services are
// built from the repository's Dockerfile and called with flags and
// variables ferry has; the runner's connection names are defined on the
// workers and point at services of the project; the source has logical
// decoding on; the dashboard is published only on loopback and with a
// token; workers get time to checkpoint and are more than one.
func CheckCompose(p *types.Project, pol ComposePolicy) []string {
	var errs []string
	add := func(svc, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("service %s: %s", svc, fmt.Sprintf(format, a...)))
	}
	repo, err := filepath.Abs(pol.Repo)
	if err != nil {
		return []string{err.Error()}
	}
	conns := map[string]string{} // name → URL, from the workers
	var workers, runners []types.ServiceConfig
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					add(name, "bind mount source %s: %v", v.Source, err)
				}
			}
		}
		if s.Build == nil {
			continue
		}
		ctxDir, err := filepath.Abs(s.Build.Context)
		if err != nil || ctxDir != repo {
			add(name, "builds from %s; ferry's image is built from the repository root %s", s.Build.Context, repo)
			continue
		}
		df := s.Build.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(ctxDir, df)); err != nil {
			add(name, "Dockerfile: %v", err)
		}
		if len(s.Entrypoint) > 0 {
			add(name, "overrides the image's entrypoint; give ferry's arguments as command")
		}
		for _, e := range CheckFlags(s.Command, pol.Flags) {
			add(name, "%s", e)
		}
		errs = append(errs, prefixed("service "+name+": ", CheckEnvNames(slices.Sorted(maps.Keys(s.Environment)), pol.EnvNames))...)
		switch s.Command[0] {
		case "worker":
			workers = append(workers, s)
			for k, v := range s.Environment {
				if n, ok := strings.CutPrefix(k, "FERRY_CONNECTION_"); ok && v != nil {
					conns[strings.ToLower(n)] = *v
				}
			}
		case "run":
			runners = append(runners, s)
		}
		if addr := temporalAddress(s); addr == "" {
			add(name, "no Temporal address (--temporal or TEMPORAL_ADDRESS)")
		} else if host, _, err := net.SplitHostPort(addr); err != nil || p.Services[host].Name == "" {
			add(name, "Temporal address %q is not HOST:PORT of a service of this project", addr)
		} else if dep, ok := s.DependsOn[host]; !ok || dep.Condition != types.ServiceConditionHealthy {
			add(name, "must depend on %s being healthy, or it starts before Temporal answers", host)
		}
	}
	if len(workers) == 0 || len(runners) == 0 {
		errs = append(errs, fmt.Sprintf("want ferry worker and ferry run services built from the repository; found %d workers and %d runners", len(workers), len(runners)))
	}
	for _, w := range workers {
		if w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas < 2 {
			add(w.Name, "runs one replica; scale-out needs at least two")
		}
		if w.StopGracePeriod == nil || time.Duration(*w.StopGracePeriod) < 30*time.Second {
			add(w.Name, "stop_grace_period must be at least 30s so activities can checkpoint after SIGTERM")
		} else if g, err := time.ParseDuration(flagValue(w.Command, "--grace")); err != nil {
			add(w.Name, "ferry worker needs --grace (below stop_grace_period): %v", err)
		} else if g >= time.Duration(*w.StopGracePeriod) {
			add(w.Name, "--grace %s is not shorter than stop_grace_period %s: compose kills the worker before its tasks checkpoint", g, time.Duration(*w.StopGracePeriod))
		}
	}
	for name, u := range conns {
		pu, err := url.Parse(u)
		if err != nil || pu.Hostname() == "" {
			errs = append(errs, fmt.Sprintf("connection %s: %q is not a URL with a host", name, u))
			continue
		}
		host := pu.Hostname()
		if _, ok := p.Services[host]; !ok {
			errs = append(errs, fmt.Sprintf("connection %s: host %s is not a service of this project", name, host))
			continue
		}
		for _, w := range workers {
			if dep, ok := w.DependsOn[host]; !ok || dep.Condition != types.ServiceConditionHealthy {
				add(w.Name, "must depend on %s (connection %s) being healthy", host, name)
			}
		}
	}
	for _, r := range runners {
		for _, flag := range []string{"--source", "--destination"} {
			name := flagValue(r.Command, flag)
			if name == "" {
				add(r.Name, "has no %s", flag)
				continue
			}
			u, ok := conns[name]
			if !ok {
				add(r.Name, "%s %s is not a connection the workers define (FERRY_CONNECTION_%s)", flag, name, strings.ToUpper(name))
				continue
			}
			if flag == "--source" && strings.HasPrefix(u, "postgres") {
				pu, err := url.Parse(u)
				if err != nil {
					continue // reported above
				}
				if src, ok := p.Services[pu.Hostname()]; ok && !strings.Contains(strings.Join(src.Command, " "), "wal_level=logical") {
					add(src.Name, "is the CDC source but does not start with wal_level=logical")
				}
			}
		}
		ui := flagValue(r.Command, "--ui")
		if ui == "" {
			add(r.Name, "serves no dashboard (--ui)")
			continue
		}
		host, port, err := net.SplitHostPort(ui)
		if err != nil {
			add(r.Name, "--ui %q: %v", ui, err)
			continue
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			if tok := r.Environment["FERRY_UI_TOKEN"]; tok == nil || *tok == "" {
				add(r.Name, "--ui %s listens beyond loopback without FERRY_UI_TOKEN", ui)
			}
		}
		published := false
		for _, pc := range r.Ports {
			if fmt.Sprint(pc.Target) != port {
				continue
			}
			published = true
			if ip := net.ParseIP(pc.HostIP); ip == nil || !ip.IsLoopback() {
				add(r.Name, "publishes the dashboard on %q; publish it on 127.0.0.1 only", pc.HostIP)
			}
		}
		if !published {
			add(r.Name, "does not publish the dashboard's port %s", port)
		}
	}
	return errs
}

func temporalAddress(s types.ServiceConfig) string {
	if v := flagValue(s.Command, "--temporal"); v != "" {
		return v
	}
	if v := s.Environment["TEMPORAL_ADDRESS"]; v != nil {
		return *v
	}
	return ""
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func prefixed(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}
