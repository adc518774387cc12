package check

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// stubFlags stands for ferry's CLI in the tests of CheckObjects itself.
func stubFlags(sub string) (map[string]bool, error) {
	common := []string{"temporal", "namespace", "task-queue", "log-format", "log-level"}
	switch sub {
	case "worker":
		return set(append(common, "concurrency", "health-addr", "connections-file", "connection", "grace", "identity")...), nil
	case "run":
		return set(append(common, "source", "destination", "name", "ui", "ui-token", "mode", "tables", "parallel", "writers", "detach", "ui-linger")...), nil
	}
	return nil, fmt.Errorf("ferry has no %q command", sub)
}

func set(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

func find[T any](objs []Object, kind, nameSuffix string) T {
	for _, o := range objs {
		if o.Kind == kind && strings.HasSuffix(o.Name, nameSuffix) {
			return o.Obj.(T)
		}
	}
	var zero T
	return zero
}

// Each broken reference or weakened setting must be reported. The objects
// are the chart's own, rendered with ci/job-runner-values.yaml, then broken
// one at a time.
func TestCheckObjectsCatchesBrokenCharts(t *testing.T) {
	args := valuesArgs("job-runner-values.yaml")
	policy := Policy{MinGraceSeconds: map[string]int64{"worker": 30}, Flags: stubFlags, EnvNames: set("FERRY_UI_TOKEN")}
	if errs := CheckObjects(render(t, args...), policy); len(errs) != 0 {
		t.Fatalf("the unbroken chart fails: %v", errs)
	}
	worker := func(objs []Object) *appsv1.Deployment { return find[*appsv1.Deployment](objs, "Deployment", "-worker") }
	workerPod := func(objs []Object) *corev1.PodSpec { return &worker(objs).Spec.Template.Spec }
	for _, tc := range []struct {
		name   string
		break_ func(objs []Object)
		want   string
	}{
		{"selector drift", func(o []Object) { worker(o).Spec.Template.Labels["app.kubernetes.io/component"] = "wrker" }, "does not match its pod template"},
		{"service selects nothing", func(o []Object) {
			find[*corev1.Service](o, "Service", "-dashboard").Spec.Selector["app.kubernetes.io/component"] = "runnr"
		}, "matches no pod template"},
		{"service targets a missing port", func(o []Object) {
			find[*corev1.Service](o, "Service", "-dashboard").Spec.Ports[0].TargetPort = intstr.FromString("dashbord")
		}, "do not expose"},
		{"probe on a missing port", func(o []Object) {
			workerPod(o).Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("healthz")
		}, "readiness probe uses port"},
		{"mount without volume", func(o []Object) { workerPod(o).Volumes = workerPod(o).Volumes[1:] }, "does not declare"},
		{"missing Secret", func(o []Object) { workerPod(o).Volumes[1].Secret.SecretName = "nope" }, `Secret "nope"`},
		{"missing Secret key", func(o []Object) {
			j := find[*batchv1.Job](o, "Job", "-runner")
			for _, e := range j.Spec.Template.Spec.Containers[0].Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					e.ValueFrom.SecretKeyRef.Key = "tokn"
				}
			}
		}, `key "tokn"`},
		{"env order", func(o []Object) {
			env := workerPod(o).Containers[0].Env
			for i, e := range env {
				if e.Name == "POD_NAME" {
					workerPod(o).Containers[0].Env = append(append(env[:i:i], env[i+1:]...), e)
					return
				}
			}
		}, "not defined before it"},
		{"writable root fs", func(o []Object) { f := false; workerPod(o).Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f }, "writable"},
		{"capabilities kept", func(o []Object) { workerPod(o).Containers[0].SecurityContext.Capabilities.Drop = nil }, "drop ALL"},
		{"root allowed", func(o []Object) {
			f := false
			workerPod(o).SecurityContext.RunAsNonRoot = &f
			workerPod(o).Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "may run as root"},
		{"no memory limit", func(o []Object) { delete(workerPod(o).Containers[0].Resources.Limits, corev1.ResourceMemory) }, "memory limit"},
		{"grace beyond the kill", func(o []Object) {
			a := workerPod(o).Containers[0].Args
			for i := range a {
				if a[i] == "--grace" {
					a[i+1] = "200s"
				}
			}
		}, "not shorter than terminationGracePeriodSeconds"},
		{"unknown variable", func(o []Object) {
			j := find[*batchv1.Job](o, "Job", "-runner")
			for i, e := range j.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "FERRY_UI_TOKEN" {
					j.Spec.Template.Spec.Containers[0].Env[i].Name = "FERRY_DASHBOARD_TOKEN"
				}
			}
		}, "FERRY_DASHBOARD_TOKEN is not read by ferry"},
		{"short grace", func(o []Object) { g := int64(5); workerPod(o).TerminationGracePeriodSeconds = &g }, "terminationGracePeriodSeconds"},
		{"unknown flag", func(o []Object) {
			workerPod(o).Containers[0].Args = append(workerPod(o).Containers[0].Args, "--concurency=3")
		}, "no flag --concurency"},
		{"unknown subcommand", func(o []Object) { workerPod(o).Containers[0].Args[0] = "wroker" }, `no "wroker" command`},
		{"HPA target missing", func(o []Object) {
			find[*autoscalingv2.HorizontalPodAutoscaler](o, "HorizontalPodAutoscaler", "-worker").Spec.ScaleTargetRef.Name = "x"
		}, "is not rendered"},
		{"replicas beside HPA", func(o []Object) { r := int32(3); worker(o).Spec.Replicas = &r }, "also sets replicas"},
		{"PDB selects nothing", func(o []Object) {
			find[*policyv1.PodDisruptionBudget](o, "PodDisruptionBudget", "-worker").Spec.Selector.MatchLabels["app.kubernetes.io/instance"] = "other"
		}, "matches no pod template"},
		{"service account missing", func(o []Object) { workerPod(o).ServiceAccountName = "ghost" }, "serviceAccountName"},
		{"job restarts always", func(o []Object) {
			find[*batchv1.Job](o, "Job", "-runner").Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, "restartPolicy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, args...)
			tc.break_(objs)
			errs := CheckObjects(objs, policy)
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Error(), tc.want)
			}
			if !found {
				t.Errorf("got %v, want an error mentioning %q", errs, tc.want)
			}
		})
	}
}

func TestCheckObjectsCatchesBrokenServiceMonitors(t *testing.T) {
	args := valuesArgs("deployment-runner-values.yaml")
	policy := Policy{ExternalSecrets: set("ferry-connections", "ferry-dashboard", "otlp-credentials"), Flags: stubFlags}
	if errs := CheckObjects(render(t, args...), policy); len(errs) != 0 {
		t.Fatalf("the unbroken chart fails: %v", errs)
	}
	for _, tc := range []struct {
		name   string
		break_ func(sm *ServiceMonitor)
		want   string
	}{
		{"wrong port", func(sm *ServiceMonitor) { sm.Spec.Endpoints[0].Port = "metrics" }, "is not a port"},
		{"selects nothing", func(sm *ServiceMonitor) { sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "x" }, "matches no Service"},
		{"token Secret missing", func(sm *ServiceMonitor) { sm.Spec.Endpoints[0].Authorization.Credentials.Name = "gone" }, "authorization credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, args...)
			tc.break_(find[*ServiceMonitor](objs, "ServiceMonitor", "-runner"))
			errs := CheckObjects(objs, policy)
			found := false
			for _, e := range errs {
				found = found || strings.Contains(e.Error(), tc.want)
			}
			if !found {
				t.Errorf("got %v, want an error mentioning %q", errs, tc.want)
			}
		})
	}
}
