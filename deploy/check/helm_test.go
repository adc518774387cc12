package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

func chartDir() string { return filepath.Join(repo, "deploy", "helm", "ferry") }

func helm(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No repositories, no plugins, no cache from this machine.
	home, err := os.MkdirTemp("", "helm-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// valuesCases are the values files the chart is rendered with: the
// defaults ("") and every file under ci/. Each lists the kinds it must
// render, so a values file that silently stops rendering something fails.
var valuesCases = map[string]map[string]int{
	"": {"ServiceAccount": 1, "Deployment": 1, "Service": 1, "PodDisruptionBudget": 1},
	"job-runner-values.yaml": {"ServiceAccount": 1, "Secret": 2, "Deployment": 1, "Service": 2,
		"PodDisruptionBudget": 1, "HorizontalPodAutoscaler": 1, "Job": 1},
	"deployment-runner-values.yaml": {"ServiceAccount": 1, "Deployment": 2, "Service": 2,
		"PodDisruptionBudget": 1, "ServiceMonitor": 2},
	"workers-only-values.yaml": {"Deployment": 1, "HorizontalPodAutoscaler": 1},
}

func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir(), "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{""}
	for _, f := range files {
		if _, ok := valuesCases[filepath.Base(f)]; !ok {
			t.Errorf("%s has no entry in valuesCases: say which kinds it renders", f)
		}
		out = append(out, filepath.Base(f))
	}
	if len(out) < 4 {
		t.Fatalf("want the defaults and at least three values files under ci/, found %q", out)
	}
	return out
}

func valuesArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"-f", filepath.Join(chartDir(), "ci", file)}
}

func TestHelmLintStrict(t *testing.T) {
	for _, f := range valuesFiles(t) {
		out, err := helm(append([]string{"lint", "--strict", chartDir()}, valuesArgs(f)...)...)
		if err != nil {
			t.Errorf("values %q: %v\n%s", f, err, out)
		}
	}
}

func render(t *testing.T, extra ...string) []Object {
	t.Helper()
	out, err := helm(append([]string{"template", "ferry", chartDir(), "--namespace", "data"}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := DecodeManifests([]byte(out))
	if err != nil {
		t.Fatalf("strict decode of the rendered chart: %v", err)
	}
	return objs
}

// policyFor declares external what the values say exists outside the chart.
func policyFor(t *testing.T, file string) Policy {
	t.Helper()
	p := Policy{
		ExternalSecrets:         map[string]bool{},
		ExternalServiceAccounts: map[string]bool{},
		MinGraceSeconds:         map[string]int64{"worker": 30},
		Flags:                   ferry.Flags,
		EnvNames:                envNames(t),
	}
	if file == "" {
		return p
	}
	b, err := readFile(filepath.Join(chartDir(), "ci", file))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Connections    struct{ ExistingSecret string } `json:"connections"`
		ServiceAccount struct {
			Create *bool
			Name   string
		} `json:"serviceAccount"`
		Runner struct {
			UI struct{ ExistingSecret string } `json:"ui"`
		} `json:"runner"`
		Worker struct {
			ExtraEnv []struct {
				ValueFrom *struct {
					SecretKeyRef *struct{ Name string } `json:"secretKeyRef"`
				} `json:"valueFrom"`
			} `json:"extraEnv"`
		} `json:"worker"`
	}
	if err := sigsyaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{v.Connections.ExistingSecret, v.Runner.UI.ExistingSecret} {
		if s != "" {
			p.ExternalSecrets[s] = true
		}
	}
	for _, e := range v.Worker.ExtraEnv {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			p.ExternalSecrets[e.ValueFrom.SecretKeyRef.Name] = true
		}
	}
	if c := v.ServiceAccount.Create; c != nil && !*c {
		p.ExternalServiceAccounts[v.ServiceAccount.Name] = true
	}
	return p
}

func TestHelmTemplateDecodesStrictlyAndHangsTogether(t *testing.T) {
	needFerry(t)
	for _, f := range valuesFiles(t) {
		t.Run("values="+f, func(t *testing.T) {
			objs := render(t, valuesArgs(f)...)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Kind]++
			}
			if want := valuesCases[f]; !mapsEqual(kinds, want) {
				t.Errorf("rendered kinds %v, want %v", kinds, want)
			}
			for _, err := range CheckObjects(objs, policyFor(t, f)) {
				t.Error(err)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Values the chart must refuse, with what the refusal must say.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"worker.replicaCout=3"}, "replicaCout"},                     // typo: the schema allows no unknown key
		{[]string{"--set-string", "worker.replicaCount=two"}, "replicaCount"}, // wrong type
		{[]string{"runner.enabled=true", "runner.destination=dst"}, "runner.source is required"},
		{[]string{"runner.enabled=true", "runner.source=a", "runner.destination=b", "runner.kind=CronJob"}, "kind"},
		{[]string{"connections.urls.bad name=postgres://x"}, "not a connection name"},
		{[]string{"worker.autoscaling.enabled=true", "worker.autoscaling.minReplicas=5", "worker.autoscaling.maxReplicas=2"}, "must not exceed"},
		{[]string{"worker.autoscaling.enabled=true", "worker.autoscaling.targetCPUUtilizationPercentage=null"}, "needs targetCPUUtilizationPercentage"},
		{[]string{"temporal.address=temporal"}, "temporal/address"}, // no port
		{[]string{"logFormat=yaml"}, "logFormat"},
		{[]string{"serviceMonitor.interval=30 seconds"}, "interval"},
	} {
		args := []string{"template", "ferry", chartDir()}
		for i := 0; i < len(tc.set); i++ {
			if tc.set[i] == "--set-string" {
				args = append(args, tc.set[i], tc.set[i+1])
				i++
				continue
			}
			args = append(args, "--set", tc.set[i])
		}
		_, err := helm(args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %q: got %v, want an error mentioning %q", tc.set, err, tc.want)
		}
	}
}

// Every value in values.yaml carries a comment on the line(s) above it. A
// block of further values (image:, worker:) needs none, its values do; the
// keys inside a value passed to Kubernetes as it is (a probe, resources)
// are Kubernetes' own and documented there.
func TestEveryValueIsDocumented(t *testing.T) {
	b, err := readFile(filepath.Join(chartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	errs := undocumentedValues(string(b))
	for _, e := range errs {
		t.Errorf("values.yaml %s has no comment", e)
	}
	// The check itself: a value without a comment is found.
	if got := undocumentedValues("worker:\n  # -- documented\n  a: 1\n  b: 2\n"); len(got) != 1 || got[0] != "line 4: b" {
		t.Errorf("undocumentedValues missed an undocumented value: %q", got)
	}
	if got := undocumentedValues("# -- probe\nprobe:\n  httpGet:\n    path: /x\n"); len(got) != 0 {
		t.Errorf("undocumentedValues flagged a pass-through value's own keys: %q", got)
	}
}

func undocumentedValues(text string) []string {
	lines := strings.Split(text, "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	commentAbove := func(i int) bool {
		return i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#")
	}
	type key struct {
		indent      int
		passThrough bool
	}
	var stack []key
	var out []string
	for i, l := range lines {
		tl := strings.TrimSpace(l)
		if tl == "" || strings.HasPrefix(tl, "#") || strings.HasPrefix(tl, "- ") {
			continue
		}
		name, rest, ok := strings.Cut(tl, ":")
		if !ok {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent(l) {
			stack = stack[:len(stack)-1]
		}
		inside := len(stack) > 0 && stack[len(stack)-1].passThrough
		pass := inside || commentAbove(i) && strings.TrimSpace(rest) == ""
		// A block of values: its next key line is indented deeper.
		block := false
		if strings.TrimSpace(rest) == "" {
			for j := i + 1; j < len(lines); j++ {
				n := strings.TrimSpace(lines[j])
				if n == "" || strings.HasPrefix(n, "#") {
					continue
				}
				block = indent(lines[j]) > indent(l) && !strings.HasPrefix(n, "- ")
				break
			}
		}
		stack = append(stack, key{indent(l), pass})
		if inside || (block && !commentAbove(i)) {
			continue
		}
		if !commentAbove(i) {
			out = append(out, fmt.Sprintf("line %d: %s", i+1, name))
		}
	}
	return out
}

func envNames(t *testing.T) map[string]bool {
	t.Helper()
	names, err := EnvNames(repo)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// NOTES.txt is only rendered by helm install, which needs a cluster; render
// it as an ordinary template of a copy of the chart instead.
func TestNotesRender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ferry")
	if err := os.CopyFS(dir, os.DirFS(chartDir())); err != nil {
		t.Fatal(err)
	}
	notes, err := readFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// helm template parses its output as YAML: carry the text as a JSON string.
	wrapped := "{{- define \"check.notes\" }}" + string(notes) + "{{ end }}\nnotes: {{ include \"check.notes\" . | toJson }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes.yaml"), []byte(wrapped), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "templates", "NOTES.txt")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		values    string
		want, not []string
	}{
		{"", []string{"WARNING: no connections", "ferry run --temporal temporal-frontend.temporal.svc.cluster.local:7233"}, []string{"Dashboard:"}},
		{"job-runner-values.yaml", []string{"3 to 12, autoscaled", "Runner (Job): flow shop-move from src to dst", "port-forward svc/ferry-dashboard 8080", "secret ferry-ui-token"}, []string{"WARNING"}},
		{"deployment-runner-values.yaml", []string{"Runner (Deployment)", "secret ferry-dashboard -o jsonpath='{.data.ui-token}'"}, []string{"WARNING"}},
	} {
		args := []string{"template", "ferry", dir, "--namespace", "data", "--show-only", "templates/notes.yaml"}
		if tc.values != "" {
			args = append(args, "-f", filepath.Join(chartDir(), "ci", tc.values))
		}
		rendered, err := helm(args...)
		if err != nil {
			t.Fatalf("values %q: %v", tc.values, err)
		}
		var doc struct{ Notes string }
		if err := sigsyaml.Unmarshal([]byte(rendered), &doc); err != nil {
			t.Fatal(err)
		}
		out := doc.Notes
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("values %q: NOTES lack %q:\n%s", tc.values, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("values %q: NOTES should not say %q:\n%s", tc.values, n, out)
			}
		}
	}
}
