package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Policy holds what CheckObjects needs beyond the objects themselves.
type Policy struct {
	// ExternalSecrets are Secrets the values say exist outside the chart.
	ExternalSecrets map[string]bool
	// ExternalServiceAccounts are ServiceAccounts that exist outside the chart.
	ExternalServiceAccounts map[string]bool
	// Flags returns the long flags ferry accepts for a subcommand (such as
	// "worker"); every --flag in a ferry container's args must be one of
	// them. Nil skips the check.
	Flags func(subcommand string) (map[string]bool, error)
	// EnvNames are the variable names ferry's sources know (EnvNames);
	// nil skips the check of ferry's own variables (FERRY_*, TEMPORAL_*).
	EnvNames map[string]bool
	// MinGraceSeconds is the least terminationGracePeriodSeconds a pod of a
	// component (app.kubernetes.io/component) must get.
	MinGraceSeconds map[string]int64
}

type workload struct {
	obj      Object
	selector *metav1.LabelSelector
	pod      *corev1.PodTemplateSpec
}

// CheckObjects checks what the API types cannot: that the rendered objects
// refer to each other correctly (selectors, named ports, volumes, Secrets,
// the autoscaler's target), that every container is locked down, and that
// ferry's containers are called with flags ferry has.
func CheckObjects(objs []Object, p Policy) []error {
	var errs []error
	fail := func(o Object, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %s: %s", o.Kind, o.Name, fmt.Sprintf(format, a...)))
	}
	seen := map[string]bool{}
	secrets := map[string]map[string]bool{} // name → keys
	accounts := map[string]bool{"default": true}
	var loads []workload
	var services []*corev1.Service
	for _, o := range objs {
		id := o.Kind + "/" + o.Name
		if seen[id] {
			fail(o, "rendered twice")
		}
		seen[id] = true
		switch v := o.Obj.(type) {
		case *corev1.Secret:
			keys := map[string]bool{}
			for k := range v.Data {
				keys[k] = true
			}
			for k := range v.StringData {
				keys[k] = true
			}
			secrets[v.Name] = keys
		case *corev1.ServiceAccount:
			accounts[v.Name] = true
		case *corev1.Service:
			services = append(services, v)
		case *appsv1.Deployment:
			loads = append(loads, workload{o, v.Spec.Selector, &v.Spec.Template})
			if v.Spec.Selector == nil {
				fail(o, "has no selector")
			}
		case *appsv1.StatefulSet:
			loads = append(loads, workload{o, v.Spec.Selector, &v.Spec.Template})
		case *appsv1.DaemonSet:
			loads = append(loads, workload{o, v.Spec.Selector, &v.Spec.Template})
		case *batchv1.Job:
			loads = append(loads, workload{o, v.Spec.Selector, &v.Spec.Template})
			if rp := v.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
				fail(o, "restartPolicy %q: a Job's pods need OnFailure or Never", rp)
			}
		}
	}
	secretOK := func(name, key string) bool {
		if p.ExternalSecrets[name] {
			return true
		}
		keys, ok := secrets[name]
		return ok && (key == "" || keys[key])
	}

	for _, w := range loads {
		if w.selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(w.selector)
			if err != nil {
				fail(w.obj, "selector: %v", err)
			} else if !sel.Matches(labels.Set(w.pod.Labels)) {
				fail(w.obj, "selector %s does not match its pod template's labels %v", sel, w.pod.Labels)
			}
		}
		for _, e := range checkPod(w.pod, p, secretOK, accounts) {
			fail(w.obj, "%s", e)
		}
	}

	// Which pod templates a label selector picks.
	podsFor := func(sel labels.Selector) []workload {
		var out []workload
		for _, w := range loads {
			if sel.Matches(labels.Set(w.pod.Labels)) {
				out = append(out, w)
			}
		}
		return out
	}

	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *corev1.Service:
			if len(v.Spec.Selector) == 0 {
				fail(o, "has no selector")
				continue
			}
			pods := podsFor(labels.SelectorFromSet(v.Spec.Selector))
			if len(pods) == 0 {
				fail(o, "selector %v matches no pod template", v.Spec.Selector)
			}
			for _, sp := range v.Spec.Ports {
				for _, w := range pods {
					if !hasContainerPort(w.pod, sp.TargetPort) {
						fail(o, "port %q targets %s, which pods of %s %s do not expose", sp.Name, sp.TargetPort.String(), w.obj.Kind, w.obj.Name)
					}
				}
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := v.Spec.ScaleTargetRef
			var target *appsv1.Deployment
			for _, t := range objs {
				if d, ok := t.Obj.(*appsv1.Deployment); ok && ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && d.Name == ref.Name {
					target = d
				}
			}
			if target == nil {
				fail(o, "scaleTargetRef %s %s %s is not rendered", ref.APIVersion, ref.Kind, ref.Name)
			} else if target.Spec.Replicas != nil {
				fail(o, "its target Deployment %s also sets replicas, which every helm upgrade would reset", target.Name)
			}
			if v.Spec.MinReplicas != nil && *v.Spec.MinReplicas > v.Spec.MaxReplicas {
				fail(o, "minReplicas %d exceeds maxReplicas %d", *v.Spec.MinReplicas, v.Spec.MaxReplicas)
			}
			if len(v.Spec.Metrics) == 0 {
				fail(o, "has no metrics")
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			if err != nil || v.Spec.Selector == nil {
				fail(o, "bad or missing selector: %v", err)
			} else if len(podsFor(sel)) == 0 {
				fail(o, "selector %s matches no pod template", sel)
			}
		case *ServiceMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&v.Spec.Selector)
			if err != nil {
				fail(o, "selector: %v", err)
				continue
			}
			var matched []*corev1.Service
			for _, s := range services {
				if sel.Matches(labels.Set(s.Labels)) {
					matched = append(matched, s)
				}
			}
			if len(matched) == 0 {
				fail(o, "selector %s matches no Service", sel)
			}
			for _, ep := range v.Spec.Endpoints {
				for _, s := range matched {
					if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == ep.Port }) {
						fail(o, "endpoint port %q is not a port of Service %s", ep.Port, s.Name)
					}
				}
				if a := ep.Authorization; a != nil && a.Credentials != nil && !secretOK(a.Credentials.Name, a.Credentials.Key) {
					fail(o, "authorization credentials: Secret %s with key %s is neither rendered nor declared external", a.Credentials.Name, a.Credentials.Key)
				}
			}
		}
	}
	return errs
}

func hasContainerPort(pod *corev1.PodTemplateSpec, port intstr.IntOrString) bool {
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
				return true
			}
		}
	}
	return false
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func checkPod(pod *corev1.PodTemplateSpec, p Policy, secretOK func(name, key string) bool, accounts map[string]bool) []string {
	var errs []string
	add := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	spec := &pod.Spec
	if sa := spec.ServiceAccountName; sa != "" && !accounts[sa] && !p.ExternalServiceAccounts[sa] {
		add("serviceAccountName %q is neither rendered nor declared external", sa)
	}
	if component := pod.Labels["app.kubernetes.io/component"]; p.MinGraceSeconds[component] > 0 {
		if g := spec.TerminationGracePeriodSeconds; g == nil || *g < p.MinGraceSeconds[component] {
			add("terminationGracePeriodSeconds must be at least %d for %s pods, so running activities can checkpoint", p.MinGraceSeconds[component], component)
		}
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if volumes[v.Name] {
			add("volume %q declared twice", v.Name)
		}
		volumes[v.Name] = true
		if s := v.Secret; s != nil {
			if !secretOK(s.SecretName, "") {
				add("volume %q: Secret %q is neither rendered nor declared external", v.Name, s.SecretName)
			}
			for _, it := range s.Items {
				if !secretOK(s.SecretName, it.Key) {
					add("volume %q: Secret %q has no key %q", v.Name, s.SecretName, it.Key)
				}
			}
		}
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	podSeccomp := spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil && spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		in := func(format string, a ...any) { add("container %s: %s", c.Name, fmt.Sprintf(format, a...)) }
		ports := map[string]bool{}
		for _, cp := range c.Ports {
			if cp.Name != "" {
				ports[cp.Name] = true
			}
		}
		for name, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue
			}
			if pt := pr.HTTPGet.Port; pt.Type == intstr.String && !ports[pt.StrVal] {
				in("%s probe uses port %q, which the container does not name", name, pt.StrVal)
			}
			if !strings.HasPrefix(pr.HTTPGet.Path, "/") {
				in("%s probe path %q must start with /", name, pr.HTTPGet.Path)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				in("mounts volume %q, which the pod does not declare", m.Name)
			}
		}
		defined := map[string]bool{}
		for _, e := range c.Env {
			for _, ref := range envRef.FindAllStringSubmatch(e.Value, -1) {
				if !defined[ref[1]] {
					in("env %s refers to $(%s), which is not defined before it (Kubernetes then passes the text through)", e.Name, ref[1])
				}
			}
			defined[e.Name] = true
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				if !secretOK(r.Name, r.Key) {
					in("env %s: Secret %q with key %q is neither rendered nor declared external", e.Name, r.Name, r.Key)
				}
			}
		}
		if p.EnvNames != nil {
			var names []string
			for _, e := range c.Env {
				names = append(names, e.Name)
			}
			for _, e := range CheckEnvNames(names, p.EnvNames) {
				in("%s", e)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && !secretOK(ef.SecretRef.Name, "") {
				in("envFrom: Secret %q is neither rendered nor declared external", ef.SecretRef.Name)
			}
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			in("has no securityContext")
		default:
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				in("root filesystem is writable (readOnlyRootFilesystem)")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				in("allows privilege escalation")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				in("must drop ALL capabilities and add none")
			}
			if sc.Privileged != nil && *sc.Privileged {
				in("is privileged")
			}
			nonRoot := podNonRoot
			if sc.RunAsNonRoot != nil {
				nonRoot = *sc.RunAsNonRoot
			}
			if !nonRoot {
				in("may run as root (runAsNonRoot)")
			}
			if !podSeccomp && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
				in("has no RuntimeDefault seccomp profile")
			}
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			in("requests no CPU (the autoscaler and the scheduler need it)")
		}
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
			in("requests no memory")
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			in("has no memory limit")
		}
		if len(c.Args) > 0 && c.Args[0] == "worker" {
			// ferry worker ends its tasks within --grace; Kubernetes kills it
			// after terminationGracePeriodSeconds, which must be longer.
			g, err := time.ParseDuration(flagValue(c.Args, "--grace"))
			tg := spec.TerminationGracePeriodSeconds
			switch {
			case err != nil:
				in("ferry worker needs --grace (below terminationGracePeriodSeconds): %v", err)
			case tg == nil || g >= time.Duration(*tg)*time.Second:
				in("ferry worker --grace %s is not shorter than terminationGracePeriodSeconds, so it is killed before its tasks checkpoint", g)
			}
		}
		if p.Flags != nil && len(c.Command) == 0 && len(c.Args) > 0 {
			for _, e := range CheckFlags(c.Args, p.Flags) {
				in("%s", e)
			}
		}
	}
	return errs
}
