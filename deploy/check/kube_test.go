package check

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: w
spec:
  replicas: 2
  selector:
    matchLabels: {app: w}
  template:
    metadata:
      labels: {app: w}
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: worker
          image: ferry:dev
          imagePullPolicy: IfNotPresent
          ports:
            - {name: health, containerPort: 9090}
`

const serviceMonitor = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: w
spec:
  selector:
    matchLabels: {app: w}
  endpoints:
    - port: health
      path: /metrics
      interval: 30s
`

func TestStrictDecodeAcceptsValidObjects(t *testing.T) {
	objs, err := DecodeManifests([]byte("# comment only\n---\n" + deployment + "---\n" + serviceMonitor))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("decoded %d objects, want 2", len(objs))
	}
	d, ok := objs[0].Obj.(*appsv1.Deployment)
	if !ok || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 9090 {
		t.Fatalf("decoded %#v", objs[0].Obj)
	}
	if sm, ok := objs[1].Obj.(*ServiceMonitor); !ok || sm.Spec.Endpoints[0].Interval != "30s" {
		t.Fatalf("decoded %#v", objs[1].Obj)
	}
}

// Each mistake must fail the strict decode: this is what makes the chart
// check worth having.
func TestStrictDecodeRejectsMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, doc, old, new, want string
	}{
		{"typo'd field", deployment, "terminationGracePeriodSeconds", "terminationGracePeriodSecond", "unknown field"},
		{"typo'd nested field", deployment, "imagePullPolicy", "imagePullPolicyy", "unknown field"},
		{"field at the wrong level", deployment, "  replicas: 2\n", "  replicas: 2\n  containers: []\n", "unknown field"},
		{"string for an integer", deployment, "replicas: 2", `replicas: "2"`, "cannot unmarshal"},
		{"word for an integer", deployment, "containerPort: 9090", "containerPort: http", "cannot unmarshal"},
		{"list for a map", deployment, "matchLabels: {app: w}", "matchLabels: [app]", "cannot unmarshal"},
		{"duplicate field", deployment, "  replicas: 2\n", "  replicas: 2\n  replicas: 3\n", "already set"},
		{"unknown kind", deployment, "kind: Deployment", "kind: Deploymnet", "no kind"},
		{"unknown version", deployment, "apiVersion: apps/v1", "apiVersion: apps/v1beta9", "apps/v1beta9"},
		{"no name", deployment, "  name: w\n", "  labels: {}\n", "metadata.name"},
		{"ServiceMonitor typo", serviceMonitor, "interval:", "intervall:", "unknown field"},
		{"ServiceMonitor bad duration", serviceMonitor, "interval: 30s", "interval: 30 seconds", "Prometheus duration"},
		{"ServiceMonitor wrong type", serviceMonitor, "path: /metrics", "path: [/metrics]", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(tc.doc, tc.old) {
				t.Fatalf("case does not apply: %q not in the document", tc.old)
			}
			_, err := DecodeManifests([]byte(strings.Replace(tc.doc, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
