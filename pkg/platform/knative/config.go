package knative

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Name is the platform's name (spec.platform, --platform) and its section's
// key (spec.knative).
const Name = "knative"

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

// DefaultImage is the function image for Knative. dev.local images
// skip Knative's tag-to-digest resolution, so no registry is consulted.
const DefaultImage = "dev.local/coldbench/fn-go:v1"

// Spec configures the knative platform: the experiment's spec.knative.
type Spec struct {
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
	ReadinessTimeout bench.Duration `json:"readinessTimeout,omitempty"`
	// TimeInterval (classic) is waited after the pods are gone, before each
	// iteration, like kperf's --time-interval.
	TimeInterval bench.Duration `json:"timeInterval,omitempty"`
	// ScaleToZeroTimeout (classic) bounds waiting for the pods to go.
	ScaleToZeroTimeout bench.Duration `json:"scaleToZeroTimeout,omitempty"`
	// Autoscaler annotations on every revision (empty = cluster default).
	Window string `json:"window,omitempty"` // autoscaling.knative.dev/window, e.g. "6s"
	Target string `json:"target,omitempty"` // autoscaling.knative.dev/target
	// ConfigureCluster lets coldbench switch on allow-zero-initial-scale
	// (and restore it afterwards) instead of refusing to run.
	ConfigureCluster bool `json:"configureCluster,omitempty"`
}

// SpecOf returns exp's knative section, or nil.
func SpecOf(exp *bench.Experiment) *Spec {
	k, _ := exp.Spec.Section(Name).(*Spec)
	return k
}

// Complete fills the section's defaults (namespace, protocol, HTTP version
// and timeouts).
func (k *Spec) Complete() {
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

// FixRecorded drops the timeInterval of files written before it was refused
// outside the classic protocol (the run ignored it), rather than refuse to
// resume them.
func (k *Spec) FixRecorded() {
	if k.Protocol != ProtocolClassic {
		k.TimeInterval = bench.Duration{}
	}
}

// ValidateSearch refuses protocols a capacity search cannot run with: each
// probe has its own N, and classic and pool keep a cell's services for the
// run's later iterations, so every probed N's services would stay until
// the run ends and load the node under the next probes.
func (k *Spec) ValidateSearch(errs *bench.Problems) {
	if k.Protocol != ProtocolFresh {
		errs.Add("spec.knative.protocol (--protocol): %q with a capacity search; a search needs %q (each probe's services go before the next probe), "+
			"while %q keeps every probed N's services until the run ends", k.Protocol, ProtocolFresh, k.Protocol)
	}
}

// ValidateDensity refuses what a density run cannot run with on Knative
// (density.go has the rest of it).
func (k *Spec) ValidateDensity(errs *bench.Problems, s *bench.Spec) {
	if k.Protocol != ProtocolFresh {
		errs.Add("spec.knative.protocol (--protocol): %q with a density run; it needs %q (each step's services are new, and those that answered stay)", k.Protocol, ProtocolFresh)
	}
	if d := s.Deadline.Duration; d > maxDensityDeadline {
		errs.Add("spec.deadline (--deadline): %v is too long for a density run on Knative: a kept pod must outlive the run, and Knative keeps an idle pod at most "+
			"its stable window plus %v (%s, the longest its webhook accepts); give at most %v", d, densityRetention, AnnPodRetention, maxDensityDeadline)
	}
}

// Validate checks the section.
func (k *Spec) Validate(errs *bench.Problems) {
	if !bench.ValidName(k.Namespace) {
		errs.Add("spec.knative.namespace: %q is not a valid namespace name; use lower-case letters, digits and '-'", k.Namespace)
	}
	switch k.Protocol {
	case ProtocolFresh, ProtocolClassic, ProtocolPool:
	default:
		errs.Add("spec.knative.protocol: %q; use %q, %q or %q", k.Protocol, ProtocolFresh, ProtocolPool, ProtocolClassic)
	}
	switch k.HTTP {
	case HTTP1, H2C:
	default:
		errs.Add("spec.knative.http (--http): %q; use %q (one connection per request, like the study) or %q (HTTP/2 cleartext: a step's requests multiplexed, released in one write per connection)", k.HTTP, HTTP1, H2C)
	}
	switch {
	case k.PoolSize < 0:
		errs.Add("spec.knative.poolSize (--pool-size): %d; must not be negative (0: the default, %d sets)", k.PoolSize, DefaultPoolSize)
	case k.PoolSize != 0 && k.Protocol != ProtocolPool:
		errs.Add("spec.knative.poolSize (--pool-size) applies to the pool protocol only; add --protocol pool or drop it")
	}
	if k.TimeInterval.Duration > 0 && k.Protocol != ProtocolClassic {
		errs.Add("spec.knative.timeInterval (--time-interval) applies to the classic protocol only; add --protocol classic or drop it")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"readinessTimeout", k.ReadinessTimeout.Duration}, {"timeInterval", k.TimeInterval.Duration}, {"scaleToZeroTimeout", k.ScaleToZeroTimeout.Duration}} {
		if d.d < 0 {
			errs.Add("spec.knative.%s: %v; must not be negative", d.name, d.d)
		}
	}
	if err := CheckIngress(k.Ingress); err != nil {
		errs.Add("spec.knative.ingress (--ingress): %v", err)
	}
	if err := CheckKubeconfig(k.Kubeconfig); err != nil {
		errs.Add("spec.knative.kubeconfig (--kubeconfig): %v", err)
	}
	k.validateAutoscaling(errs)
}

// validateAutoscaling checks the autoscaler annotations' values.
func (k *Spec) validateAutoscaling(errs *bench.Problems) {
	if k.Window != "" {
		if d, err := time.ParseDuration(k.Window); err != nil || d < 6*time.Second || d > time.Hour {
			errs.Add("spec.knative.window: %q; Knative accepts a duration between 6s and 1h", k.Window)
		}
	}
	if k.Target != "" {
		if v, err := strconv.ParseFloat(k.Target, 64); err != nil || v <= 0 {
			errs.Add("spec.knative.target: %q; give a positive number (concurrent requests per pod)", k.Target)
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
func (k *Spec) PoolSets(n, cells int) int {
	sets := k.PoolSize
	if sets == 0 {
		sets = DefaultPoolSize
		if n > 0 {
			sets = max(1, min(sets, MaxPoolServices/n))
		}
	}
	return max(1, min(sets, cells))
}
