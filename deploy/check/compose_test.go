package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func composeFile() string { return filepath.Join(repo, "deploy", "compose", "compose.yaml") }

var composeEnv = map[string]string{"FERRY_UI_TOKEN": "a-test-token-0123456789"}

func composePolicy(t *testing.T) ComposePolicy {
	t.Helper()
	names, err := EnvNames(repo)
	if err != nil {
		t.Fatal(err)
	}
	return ComposePolicy{Repo: repo, Flags: ferry.Flags, EnvNames: names}
}

func TestComposeFileIsValidAndHangsTogether(t *testing.T) {
	needFerry(t)
	p, err := LoadCompose(context.Background(), composeFile(), composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"temporal", "source", "destination", "worker", "run", "otel-collector", "load"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("service %s is missing", want)
		}
	}
	for _, e := range CheckCompose(p, composePolicy(t)) {
		t.Error(e)
	}
}

func TestComposeRequiresTheDashboardToken(t *testing.T) {
	_, err := LoadCompose(context.Background(), composeFile(), nil)
	if err == nil || !strings.Contains(err.Error(), "FERRY_UI_TOKEN") {
		t.Fatalf("loading without FERRY_UI_TOKEN: got %v, want an error naming it", err)
	}
}

// Each mistake in a copy of the compose file must be reported, by the
// compose specification's schema or by CheckCompose.
func TestComposeCheckCatchesMistakes(t *testing.T) {
	needFerry(t)
	orig, err := readFile(composeFile())
	if err != nil {
		t.Fatal(err)
	}
	pol := composePolicy(t)
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown key", "    stop_grace_period: 60s", "    stop_grace_periods: 60s", "stop_grace_periods"},
		{"wrong type", "replicas: 3", "replicas: three", "replicas"},
		{"undefined dependency", "      destination:\n        condition: service_healthy", "      destinaton:\n        condition: service_healthy", "destinaton"},
		{"unknown connection", `"--source", "src"`, `"--source", "source"`, "--source source is not a connection"},
		{"unknown flag", `"--concurrency"`, `"--concurency"`, "no flag --concurency"},
		{"unknown variable", "FERRY_TASK_QUEUE: ferry", "FERRY_TASKQUEUE: ferry", "FERRY_TASKQUEUE is not read by ferry"},
		{"dashboard on every interface", `"127.0.0.1:8080:8080"`, `"8080:8080"`, "127.0.0.1 only"},
		{"no logical decoding", "wal_level=logical", "wal_level=replica", "wal_level=logical"},
		{"one worker", "replicas: 3", "replicas: 1", "at least two"},
		{"grace beyond the kill", `"--grace", "45s"`, `"--grace", "90s"`, "not shorter than stop_grace_period"},
		{"temporal not awaited", "      temporal:\n        condition: service_healthy\n      source:", "      temporal:\n        condition: service_started\n      source:", "being healthy"},
		{"missing seed", "./seed/source.sql", "./seed/missing.sql", "missing.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("the compose file no longer contains %q; update this case", tc.old)
			}
			dir := copyComposeDir(t)
			text := strings.Replace(string(orig), tc.old, tc.new, 1)
			// The copy lives elsewhere: point its build context back at the repository.
			text = strings.ReplaceAll(text, "context: ../..", "context: "+repo)
			file := filepath.Join(dir, "compose.yaml")
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			var msgs []string
			p, err := LoadCompose(context.Background(), file, composeEnv)
			if err != nil {
				msgs = []string{err.Error()}
			} else {
				msgs = CheckCompose(p, pol)
			}
			if !containsSub(msgs, tc.want) {
				t.Errorf("got %q, want an error mentioning %q", msgs, tc.want)
			}
		})
	}
}

// copyComposeDir copies deploy/compose (the files the compose file mounts).
func copyComposeDir(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Dir(composeFile())
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
