package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

// Object is one rendered manifest, decoded into its typed API struct.
type Object struct {
	Kind, Name string
	Obj        runtime.Object
}

var strictDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err) // unreachable: client-go's own types register cleanly
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// DecodeManifests splits a multi-document YAML stream (helm template's
// output) and decodes every document strictly: an unknown or duplicated
// field, a value of the wrong type, or a kind the API does not know is an
// error. ServiceMonitor, a CRD the client-go scheme does not carry, is
// decoded strictly into this package's own ServiceMonitor struct.
func DecodeManifests(stream []byte) ([]Object, error) {
	r := utilyaml.NewYAMLReader(bufioReader(stream))
	var out []Object
	var errs []error
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("split the YAML stream: %w", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, err := DecodeObject(doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, obj)
	}
	return out, errors.Join(errs...)
}

// DecodeObject decodes one manifest strictly.
func DecodeObject(doc []byte) (Object, error) {
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
		return Object{}, fmt.Errorf("read apiVersion, kind and name: %w\n%s", err, doc)
	}
	where := fmt.Sprintf("%s %s/%s", tm.APIVersion, tm.Kind, tm.Metadata.Name)
	if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "ServiceMonitor" {
		var sm ServiceMonitor
		if err := sigsyaml.UnmarshalStrict(doc, &sm); err != nil {
			return Object{}, fmt.Errorf("%s: %w", where, err)
		}
		if err := sm.validate(); err != nil {
			return Object{}, fmt.Errorf("%s: %w", where, err)
		}
		return Object{Kind: tm.Kind, Name: sm.Name, Obj: &sm}, nil
	}
	obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", where, err)
	}
	m, err := metaOf(obj)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", where, err)
	}
	if m.GetName() == "" {
		return Object{}, fmt.Errorf("%s: metadata.name is empty", where)
	}
	return Object{Kind: gvk.Kind, Name: m.GetName(), Obj: obj}, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// ServiceMonitor is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor that this chart renders. It is
// decoded strictly, so a field the chart writes that is not declared here
// (a typo, or a field this struct would first have to learn) fails.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec follows the operator's CRD field names.
type ServiceMonitorSpec struct {
	JobLabel          string                `json:"jobLabel,omitempty"`
	Selector          metav1.LabelSelector  `json:"selector"`
	NamespaceSelector NamespaceSelector     `json:"namespaceSelector,omitempty"`
	Endpoints         []ServiceMonitorPoint `json:"endpoints"`
}

// NamespaceSelector picks the namespaces whose Services are scraped.
type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// ServiceMonitorPoint is one scraped endpoint of the selected Services.
type ServiceMonitorPoint struct {
	Port          string         `json:"port,omitempty"`
	Path          string         `json:"path,omitempty"`
	Scheme        string         `json:"scheme,omitempty"`
	Interval      string         `json:"interval,omitempty"`
	ScrapeTimeout string         `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool           `json:"honorLabels,omitempty"`
	Authorization *Authorization `json:"authorization,omitempty"`
}

// Authorization is the operator's SafeAuthorization.
type Authorization struct {
	Type        string                    `json:"type,omitempty"`
	Credentials *corev1.SecretKeySelector `json:"credentials,omitempty"`
}

// The CRD's pattern for Prometheus durations.
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

func (sm *ServiceMonitor) validate() error {
	if sm.Name == "" {
		return errors.New("metadata.name is empty")
	}
	if len(sm.Spec.Endpoints) == 0 {
		return errors.New("spec.endpoints is empty")
	}
	for i, ep := range sm.Spec.Endpoints {
		for field, d := range map[string]string{"interval": ep.Interval, "scrapeTimeout": ep.ScrapeTimeout} {
			if d != "" && !promDuration.MatchString(d) {
				return fmt.Errorf("spec.endpoints[%d].%s %q is not a Prometheus duration", i, field, d)
			}
		}
		if ep.Port == "" {
			return fmt.Errorf("spec.endpoints[%d].port is empty", i)
		}
		if ep.Scheme != "" && ep.Scheme != "http" && ep.Scheme != "https" {
			return fmt.Errorf("spec.endpoints[%d].scheme %q: want http or https", i, ep.Scheme)
		}
		if a := ep.Authorization; a != nil && (a.Credentials == nil || a.Credentials.Name == "" || a.Credentials.Key == "") {
			return fmt.Errorf("spec.endpoints[%d].authorization needs credentials with a Secret name and key", i)
		}
	}
	return nil
}

// DeepCopyObject lets ServiceMonitor be a runtime.Object beside the API types.
func (sm *ServiceMonitor) DeepCopyObject() runtime.Object {
	c := *sm
	sm.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Spec.Endpoints = append([]ServiceMonitorPoint(nil), sm.Spec.Endpoints...)
	return &c
}
