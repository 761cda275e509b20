// Package bench defines an experiment (what to measure), validates it, and
// runs it against a platform, streaming one record per attempt.
package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"
)

const (
	APIVersion = "coldbench.dev/v1alpha1"
	Kind       = "Experiment"

	PlatformNode    = "node"
	PlatformKnative = "knative"

	// MaxScale guards against typos like --scales 5000 on a laptop;
	// --force lifts it up to HardMaxScale.
	MaxScale     = 1000
	HardMaxScale = 100000
	// MaxIterations bounds a single run; split bigger studies.
	MaxIterations = 100000

	// DefaultRuntimeName is how the runtime with no handler (the platform's
	// default runtime) is named on the command line.
	DefaultRuntimeName = "default"
)

// Default images: built by `coldbench image build` and imported locally.
const (
	DefaultImage      = "coldbench.local/fn-go:v1"
	DefaultPauseImage = "coldbench.local/pause:3.10"
	DefaultEndpoint   = "unix:///run/coldbench/containerd/containerd.sock"
	DefaultPort       = 8080
)

// Duration is a time.Duration that reads and writes as "1.5s" in YAML/JSON.
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string. Anything else is an
// *json.UnmarshalTypeError holding the value as written, to which the
// decoder adds the field's path.
func (d *Duration) UnmarshalJSON(b []byte) error {
	value := string(b) // as written, if not a string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &value); err == nil {
			if v, err := time.ParseDuration(value); err == nil {
				d.Duration = v
				return nil
			}
		}
	}
	return &json.UnmarshalTypeError{Value: value, Type: reflect.TypeFor[Duration]()}
}

// Experiment is the versioned experiment file (apiVersion coldbench.dev/v1alpha1).
type Experiment struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`
}

type Metadata struct {
	Name string `json:"name,omitempty"`
}

type Spec struct {
	Platform string    `json:"platform"`
	Runtimes []Runtime `json:"runtimes"`
	// Scales: N = instances cold-started at once, one step per entry.
	Scales     []int `json:"scales"`
	Iterations int   `json:"iterations"`
	Warmups    int   `json:"warmups"`
	// RequestTimeout ends one attempt as a failure (never retried into a warm
	// instance).
	RequestTimeout Duration `json:"requestTimeout"`
	// Deadline bounds the whole run; cells not started by then are skipped
	// and reported.
	Deadline Duration `json:"deadline"`
	// ProbeInterval: a new GET is started this often until one succeeds.
	ProbeInterval Duration     `json:"probeInterval"`
	Output        string       `json:"output,omitempty"`
	Node          *NodeSpec    `json:"node,omitempty"`
	Knative       *KnativeSpec `json:"knative,omitempty"`
}

// Runtime is one column of the runtime matrix.
type Runtime struct {
	Name string `json:"name"`
	// Handler is the CRI runtime handler (node) or RuntimeClass name
	// (knative); empty means the platform's default runtime.
	Handler     string            `json:"handler"`
	Image       string            `json:"image,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NodeSpec configures the node backend (containerd over CRI).
type NodeSpec struct {
	Endpoint string `json:"endpoint,omitempty"`
	// Port the function listens on inside the pod.
	Port int `json:"port,omitempty"`
}

// Cold-start protocols of the knative platform.
const (
	// ProtocolFresh gives every sample a new service born with
	// initial-scale 0: provably cold, no waiting for scale-to-zero.
	ProtocolFresh = "fresh"
	// ProtocolClassic is the study's: the same services every iteration,
	// waiting until their pods are gone (plus TimeInterval) before each.
	ProtocolClassic = "classic"
	// ProtocolPool measures what classic measures (re-activation of a
	// revision scaled to zero) without its wait: PoolSize sets of services,
	// each activated once (untimed) before the first sample, are used in
	// turn, so a set scales to zero while the others are measured.
	ProtocolPool = "pool"
)

// HTTP versions of the measured requests (knative).
const (
	// HTTP1 is the study's: one HTTP/1.1 connection per request, each
	// request its own write.
	HTTP1 = "http1"
	// H2C multiplexes a step's requests as HTTP/2 streams (cleartext,
	// prior knowledge) on a few connections, each connection's requests in
	// one write: a near-simultaneous release.
	H2C = "h2c"
)

// DefaultPoolSize is the pool protocol's default number of service sets:
// on the lab a revision's pod is gone ≈ 40 s after its sample and samples
// come every ≈ 3.3 s, so a set's turn comes back about when it is ready.
const DefaultPoolSize = 12

// MaxPoolServices bounds the services of a default-sized pool (sets × N):
// all of a pool's pods can be alive at once (activation, drains), and 96
// fit a single node's default 110 pods beside Knative's own. At larger N
// the pool gets fewer sets (at least 1: the classic protocol's wait). An
// explicit poolSize is used as given.
const MaxPoolServices = 96

// DefaultKnativeImage is the function image for Knative. dev.local images
// skip Knative's tag-to-digest resolution, so no registry is consulted.
const DefaultKnativeImage = "dev.local/coldbench/fn-go:v1"

// KnativeSpec configures the knative platform.
type KnativeSpec struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	// Namespace for everything coldbench creates; created (and labelled) if
	// absent. Default "coldbench".
	Namespace string `json:"namespace,omitempty"`
	// Ingress HOST:PORT; empty = detect (Kourier, Istio, Contour, Traefik).
	Ingress string `json:"ingress,omitempty"`
	// Protocol: fresh (default), pool or classic.
	Protocol string `json:"protocol,omitempty"`
	// HTTP is the measured requests' protocol: http1 (default) or h2c.
	HTTP string `json:"http,omitempty"`
	// PoolSize (pool) is the number of service sets used in turn; 0 =
	// DefaultPoolSize, fewer at large N (MaxPoolServices).
	PoolSize int `json:"poolSize,omitempty"`
	// ReadinessTimeout bounds waiting for services to be Ready (untimed).
	ReadinessTimeout Duration `json:"readinessTimeout,omitempty"`
	// TimeInterval (classic) is waited after the pods are gone, before each
	// iteration, like kperf's --time-interval.
	TimeInterval Duration `json:"timeInterval,omitempty"`
	// ScaleToZeroTimeout (classic) bounds waiting for the pods to go.
	ScaleToZeroTimeout Duration `json:"scaleToZeroTimeout,omitempty"`
	// Autoscaler annotations on every revision (empty = cluster default).
	Window string `json:"window,omitempty"` // autoscaling.knative.dev/window, e.g. "6s"
	Target string `json:"target,omitempty"` // autoscaling.knative.dev/target
	// ConfigureCluster lets coldbench switch on allow-zero-initial-scale
	// (and restore it afterwards) instead of refusing to run.
	ConfigureCluster bool `json:"configureCluster,omitempty"`
}

// Default returns the experiment the README's first command runs.
func Default() *Experiment {
	return &Experiment{
		APIVersion: APIVersion,
		Kind:       Kind,
		Spec: Spec{
			Platform: PlatformNode,
			Runtimes: []Runtime{
				{Name: "runc", Handler: "runc"},
				{Name: "crun", Handler: "crun"},
			},
			Scales:         []int{1, 4},
			Iterations:     5,
			Warmups:        1,
			RequestTimeout: Duration{30 * time.Second},
			Deadline:       Duration{30 * time.Minute},
			ProbeInterval:  Duration{2 * time.Millisecond},
		},
	}
}

// Decode reads an experiment file strictly: unknown fields and wrong types are
// errors that name the field.
func Decode(data []byte) (*Experiment, error) {
	exp := Default()
	// Clear lists so the file's values replace, not extend, the defaults.
	exp.Spec.Runtimes, exp.Spec.Scales = nil, nil
	// Editors on Windows save a UTF-8 byte-order mark; YAML allows one at
	// the start, but the parser underneath shows it as 'ï'.
	bom := []byte("\ufeff")
	data = bytes.TrimPrefix(data, bom)
	if i := bytes.Index(data, bom); i >= 0 {
		return nil, fmt.Errorf("experiment file: line %d: a UTF-8 byte-order mark (U+FEFF) inside the file; remove it (save as UTF-8 without BOM)", bytes.Count(data[:i], []byte("\n"))+1)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("experiment file is empty; start from the example in README.md")
	}
	js, err := yaml.YAMLToJSONStrict(data) // strict: duplicate keys are errors
	if err != nil {
		if l := tabIndentLine(data); l > 0 {
			return nil, fmt.Errorf("experiment file: line %d: a tab character; YAML indents with spaces (%s)", l, cleanYAMLError(err))
		}
		return nil, fmt.Errorf("experiment file: %s", cleanYAMLError(err))
	}
	if !bytes.HasPrefix(bytes.TrimSpace(js), []byte("{")) { // a list, a scalar, null
		return nil, fmt.Errorf("experiment file: want a YAML mapping with apiVersion, kind and spec")
	}
	if err := decodeStrict(js, exp); err != nil {
		return nil, fmt.Errorf("experiment file: %w", err)
	}
	if exp.APIVersion != APIVersion {
		return nil, fmt.Errorf("experiment file: apiVersion %q is not supported; set apiVersion: %s", exp.APIVersion, APIVersion)
	}
	if exp.Kind != Kind {
		return nil, fmt.Errorf("experiment file: kind %q is not supported; set kind: %s", exp.Kind, Kind)
	}
	return exp, nil
}

// tabIndentLine returns the number of the first line indented with a tab
// (YAML forbids tabs in indentation; the parser's message does not say
// "tab"), or 0.
func tabIndentLine(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 && len(bytes.TrimSpace(line)) > 0 {
			return i + 1
		}
	}
	return 0
}

// LoadFile decodes the experiment file at path.
func LoadFile(path string) (*Experiment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading experiment file: %w", err)
	}
	exp, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exp, nil
}

// sigs.k8s.io/yaml wraps encoding/json errors in two layers of prose; keep
// the part that names the field.
func cleanYAMLError(err error) string {
	s := err.Error()
	for _, p := range []string{"error unmarshaling JSON: ", "while decoding JSON: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// A DNS-1123 label: what Kubernetes accepts as a name, and safe in file names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Complete fills what the experiment leaves to coldbench: the section of
// its platform and that section's defaults (node: endpoint and port;
// knative: namespace, protocol, HTTP version and timeouts) and each
// runtime's image. It changes nothing that is set, so it may run twice, and
// checks nothing: Validate does.
func (e *Experiment) Complete() {
	s := &e.Spec
	switch s.Platform {
	case PlatformNode:
		if s.Node == nil {
			s.Node = &NodeSpec{}
		}
		s.Node.complete()
	case PlatformKnative:
		if s.Knative == nil {
			s.Knative = &KnativeSpec{}
		}
		s.Knative.complete()
	}
	image := DefaultImage
	if s.Platform == PlatformKnative {
		image = DefaultKnativeImage
	}
	for i := range s.Runtimes {
		if s.Runtimes[i].Image == "" {
			s.Runtimes[i].Image = image
		}
	}
}

func (n *NodeSpec) complete() {
	if n.Endpoint == "" {
		n.Endpoint = DefaultEndpoint
	}
	if n.Port == 0 {
		n.Port = DefaultPort
	}
}

func (k *KnativeSpec) complete() {
	if k.Namespace == "" {
		k.Namespace = "coldbench"
	}
	if k.Protocol == "" {
		k.Protocol = ProtocolFresh
	}
	if k.HTTP == "" {
		k.HTTP = HTTP1
	}
	if k.ReadinessTimeout.Duration == 0 {
		k.ReadinessTimeout.Duration = 3 * time.Minute
	}
	if k.ScaleToZeroTimeout.Duration == 0 {
		k.ScaleToZeroTimeout.Duration = 10 * time.Minute
	}
}

// CompleteAndValidate completes the experiment, then validates it: what
// every caller about to run (or check) an experiment needs.
func (e *Experiment) CompleteAndValidate(force bool) error {
	e.Complete()
	return e.Validate(force)
}

// problems collects what Validate finds, each naming the field and the fix.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// Validate checks everything that can be checked without touching a
// platform and reports every problem at once. It changes nothing: an
// experiment that is not completed (Complete) is refused for what
// Complete would have filled in.
func (e *Experiment) Validate(force bool) error {
	s := &e.Spec
	var errs problems
	s.validatePlatform(&errs)
	s.validateRuntimes(&errs)
	s.validateScales(&errs, force)
	s.validateCounts(&errs)
	if s.Platform == PlatformNode {
		s.Node.validate(&errs)
	}
	s.validateImages(&errs)
	if s.Output != "" {
		if st, err := os.Stat(s.Output); err == nil && st.IsDir() {
			errs.add("spec.output (--output): %q is a directory; give the records file's name, e.g. %s", s.Output, filepath.Join(s.Output, "study.jsonl"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid experiment:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// validatePlatform checks the platform's name, that only its section is
// set, and (knative) that section.
func (s *Spec) validatePlatform(errs *problems) {
	switch s.Platform {
	case PlatformNode:
		if s.Knative != nil {
			errs.add("spec.knative: set, but spec.platform is %q; remove it or set platform: knative", s.Platform)
		}
	case PlatformKnative:
		if s.Node != nil {
			errs.add("spec.node: set, but spec.platform is %q; remove it or set platform: node", s.Platform)
		}
		s.Knative.validate(errs)
	default:
		errs.add("spec.platform: unknown platform %q; use %q or %q", s.Platform, PlatformNode, PlatformKnative)
	}
}

func (s *Spec) validateRuntimes(errs *problems) {
	if len(s.Runtimes) == 0 {
		errs.add("spec.runtimes: no runtime given; name at least one, e.g. --runtimes runc,crun")
	}
	seen := map[string]bool{}
	for i, r := range s.Runtimes {
		field := fmt.Sprintf("spec.runtimes[%d]", i)
		switch {
		case r.Name == "":
			errs.add("%s.name: empty; give each runtime a name (use %q for the platform's default runtime)", field, DefaultRuntimeName)
		case len(r.Name) > 63 || !nameRE.MatchString(r.Name):
			errs.add("%s.name: %q is not a valid name; use lower-case letters, digits and '-', at most 63 characters", field, r.Name)
		case seen[r.Name]:
			errs.add("%s.name: %q appears twice; runtime names must be unique", field, r.Name)
		}
		seen[r.Name] = true
		if r.Handler != "" && (len(r.Handler) > 63 || !nameRE.MatchString(r.Handler)) {
			errs.add("%s.handler: %q is not a valid handler/RuntimeClass name; use lower-case letters, digits and '-'", field, r.Handler)
		}
	}
}

func (s *Spec) validateScales(errs *problems, force bool) {
	if len(s.Scales) == 0 {
		errs.add("spec.scales: empty; give at least one N, e.g. --scales 1,4")
	}
	seenN := map[int]bool{}
	for i, n := range s.Scales {
		switch {
		case n < 1:
			errs.add("spec.scales[%d]: N = %d; N is the number of instances cold-started at once and must be at least 1", i, n)
		case n > HardMaxScale:
			errs.add("spec.scales[%d]: N = %d is above the hard limit of %d", i, n, HardMaxScale)
		case n > MaxScale && !force:
			errs.add("spec.scales[%d]: N = %d is above the sane cap of %d; pass --force if you mean it", i, n, MaxScale)
		case seenN[n]:
			errs.add("spec.scales[%d]: N = %d appears twice", i, n)
		}
		seenN[n] = true
	}
}

// validateCounts checks the iteration counts and the run's durations.
func (s *Spec) validateCounts(errs *problems) {
	if s.Iterations < 1 || s.Iterations > MaxIterations {
		errs.add("spec.iterations: %d; must be between 1 and %d", s.Iterations, MaxIterations)
	}
	if s.Warmups < 0 || s.Warmups > MaxIterations {
		errs.add("spec.warmups: %d; must be between 0 and %d", s.Warmups, MaxIterations)
	}
	if s.RequestTimeout.Duration <= 0 {
		errs.add("spec.requestTimeout: %v; must be positive, e.g. 30s", s.RequestTimeout.Duration)
	}
	if s.Deadline.Duration <= 0 {
		errs.add("spec.deadline: %v; must be positive, e.g. 30m", s.Deadline.Duration)
	}
	if s.ProbeInterval.Duration < 100*time.Microsecond || s.ProbeInterval.Duration > time.Second {
		errs.add("spec.probeInterval: %v; must be between 100µs and 1s (a new GET is started this often)", s.ProbeInterval.Duration)
	} else if s.RequestTimeout.Duration > 0 && s.ProbeInterval.Duration >= s.RequestTimeout.Duration {
		errs.add("spec.probeInterval: %v is not shorter than spec.requestTimeout %v", s.ProbeInterval.Duration, s.RequestTimeout.Duration)
	}
}

func (s *Spec) validateImages(errs *problems) {
	for i, r := range s.Runtimes {
		if _, err := name.ParseReference(r.Image); err != nil {
			errs.add("spec.runtimes[%d].image (--image): %q is not an image reference; write e.g. %s", i, r.Image, DefaultImage)
		}
	}
}

// validate checks the node section (nil: as if empty).
func (n *NodeSpec) validate(errs *problems) {
	if n == nil {
		n = &NodeSpec{}
	}
	if n.Port < 1 || n.Port > 65535 {
		errs.add("spec.node.port: %d; must be a TCP port (1-65535)", n.Port)
	}
	if !strings.HasPrefix(n.Endpoint, "unix://") && !strings.HasPrefix(n.Endpoint, "/") {
		errs.add("spec.node.endpoint: %q; give containerd's CRI socket as unix:///path/to.sock", n.Endpoint)
	}
}

// validate checks the knative section (nil: as if empty).
func (k *KnativeSpec) validate(errs *problems) {
	if k == nil {
		k = &KnativeSpec{}
	}
	if len(k.Namespace) > 63 || !nameRE.MatchString(k.Namespace) {
		errs.add("spec.knative.namespace: %q is not a valid namespace name; use lower-case letters, digits and '-'", k.Namespace)
	}
	switch k.Protocol {
	case ProtocolFresh, ProtocolClassic, ProtocolPool:
	default:
		errs.add("spec.knative.protocol: %q; use %q, %q or %q", k.Protocol, ProtocolFresh, ProtocolPool, ProtocolClassic)
	}
	switch k.HTTP {
	case HTTP1, H2C:
	default:
		errs.add("spec.knative.http (--http): %q; use %q (one connection per request, like the study) or %q (HTTP/2 cleartext: a step's requests multiplexed, released in one write per connection)", k.HTTP, HTTP1, H2C)
	}
	switch {
	case k.PoolSize < 0:
		errs.add("spec.knative.poolSize (--pool-size): %d; must not be negative (0: the default, %d sets)", k.PoolSize, DefaultPoolSize)
	case k.PoolSize != 0 && k.Protocol != ProtocolPool:
		errs.add("spec.knative.poolSize (--pool-size) applies to the pool protocol only; add --protocol pool or drop it")
	}
	if k.TimeInterval.Duration > 0 && k.Protocol != ProtocolClassic {
		errs.add("spec.knative.timeInterval (--time-interval) applies to the classic protocol only; add --protocol classic or drop it")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"readinessTimeout", k.ReadinessTimeout.Duration}, {"timeInterval", k.TimeInterval.Duration}, {"scaleToZeroTimeout", k.ScaleToZeroTimeout.Duration}} {
		if d.d < 0 {
			errs.add("spec.knative.%s: %v; must not be negative", d.name, d.d)
		}
	}
	if err := CheckIngress(k.Ingress); err != nil {
		errs.add("spec.knative.ingress (--ingress): %v", err)
	}
	if err := CheckKubeconfig(k.Kubeconfig); err != nil {
		errs.add("spec.knative.kubeconfig (--kubeconfig): %v", err)
	}
	k.validateAutoscaling(errs)
}

// validateAutoscaling checks the autoscaler annotations' values.
func (k *KnativeSpec) validateAutoscaling(errs *problems) {
	if k.Window != "" {
		if d, err := time.ParseDuration(k.Window); err != nil || d < 6*time.Second || d > time.Hour {
			errs.add("spec.knative.window: %q; Knative accepts a duration between 6s and 1h", k.Window)
		}
	}
	if k.Target != "" {
		if v, err := strconv.ParseFloat(k.Target, 64); err != nil || v <= 0 {
			errs.add("spec.knative.target: %q; give a positive number (concurrent requests per pod)", k.Target)
		}
	}
}

// CheckIngress checks an ingress address's syntax ("" = detect): HOST:PORT
// with a port in 1-65535, no scheme or path. It says what to write instead.
func CheckIngress(in string) error {
	if in == "" {
		return nil
	}
	if strings.Contains(in, "://") || strings.Contains(in, "/") {
		return fmt.Errorf("%q; give HOST:PORT without a scheme or path, e.g. 192.168.1.10:31080", in)
	}
	host, port, err := net.SplitHostPort(in)
	if err != nil || host == "" {
		return fmt.Errorf("%q; give HOST:PORT, e.g. 192.168.1.10:31080", in)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a TCP port (1-65535)", in, port)
	}
	return nil
}

// CheckKubeconfig checks that a kubeconfig given by name ("" = the usual
// search) is a readable file, before any client is made of it.
func CheckKubeconfig(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("%q: %v; give the path of a kubeconfig file", path, errors.Unwrap(err))
	case st.IsDir():
		return fmt.Errorf("%q is a directory; give the path of a kubeconfig file", path)
	}
	return nil
}

// PoolSets is the number of service sets the pool protocol uses at scale n
// for cells samples (warm-ups included): PoolSize when given, else
// DefaultPoolSize but no more than MaxPoolServices / n; never more sets
// than samples.
func (k *KnativeSpec) PoolSets(n, cells int) int {
	sets := k.PoolSize
	if sets == 0 {
		sets = DefaultPoolSize
		if n > 0 {
			sets = max(1, min(sets, MaxPoolServices/n))
		}
	}
	return max(1, min(sets, cells))
}

// RuntimesFromNames builds the runtime matrix from --runtimes: each name is
// also its handler, except "default" which selects the platform's default.
func RuntimesFromNames(names []string, image string) []Runtime {
	var rs []Runtime
	for _, n := range names {
		n = strings.TrimSpace(n)
		h := n
		if n == DefaultRuntimeName || n == "" {
			n, h = DefaultRuntimeName, ""
		}
		rs = append(rs, Runtime{Name: n, Handler: h, Image: image})
	}
	return rs
}
