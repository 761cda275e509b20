package knative

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Backend describes the knative platform to the experiment model and the
// CLI; the program registers it (bench.Register).
func Backend() bench.Backend {
	return bench.Backend{
		Name:       Name,
		Summary:    "a Knative Serving cluster",
		NewSection: func() bench.Section { return &Spec{} },
		Image:      DefaultImage,
		Flags: &bench.BackendFlags{
			New:    func() bench.Flags { return &flags{} },
			Names:  flagNames,
			Doctor: []string{"kubeconfig", "context", "namespace", "ingress", "http", "configure-cluster"},
			Clean:  []string{"kubeconfig", "context", "namespace"},
			// Where to run: a cluster reached another way.
			Resume:  []string{"kubeconfig", "context", "ingress"},
			Refusal: "--%s applies only to --platform knative (the platform is %q); drop it or add --platform knative",
		},
		Open: func(exp *bench.Experiment, log *slog.Logger) (bench.Platform, error) {
			return New(exp, log)
		},
		Cleaned: func(sec bench.Section) string {
			return "Knative service(s) in namespace " + sec.(*Spec).Namespace
		},
		Density: true,
	}
}

// flags are the knative platform's flags, shared by run, doctor and clean
// (kubectl's names where kubectl has one).
type flags struct {
	kubeconfig, context, namespace, ingress, protocol, window, target string
	http                                                              string
	readinessTimeout, timeInterval, scaleToZeroTimeout                time.Duration
	configureCluster                                                  bool
	poolSize                                                          int
}

// flagNames are the flags Register adds.
var flagNames = []string{"kubeconfig", "context", "namespace", "ingress", "protocol", "http", "pool-size",
	"readiness-timeout", "time-interval", "scale-to-zero-timeout", "window", "target", "configure-cluster"}

func (k *flags) Register(fl *pflag.FlagSet) {
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "knative: kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&k.context, "context", "", "knative: kubeconfig context")
	fl.StringVarP(&k.namespace, "namespace", "n", "coldbench", "knative: namespace for coldbench's services (created if absent)")
	fl.StringVar(&k.ingress, "ingress", "", "knative: ingress HOST:PORT (default: detect Kourier, Istio, Contour or Traefik)")
	fl.StringVar(&k.protocol, "protocol", ProtocolFresh, "knative: cold protocol: fresh (a new service per sample: first activation), pool (sets of services used in turn: re-activation, like classic, without its wait) or classic (wait for scale to zero, like the study)")
	fl.StringVar(&k.http, "http", HTTP1, "knative: HTTP of the measured requests: http1 (one connection per request, like the study) or h2c (HTTP/2 cleartext: a step's requests multiplexed on a few connections, each released in one write; the ingress must accept h2c)")
	fl.IntVar(&k.poolSize, "pool-size", 0, fmt.Sprintf("knative, pool: service sets used in turn (default %d; fewer when sets × N > %d)", DefaultPoolSize, MaxPoolServices))
	fl.DurationVar(&k.readinessTimeout, "readiness-timeout", 3*time.Minute, "knative: wait this long for services to be Ready (untimed)")
	fl.DurationVar(&k.timeInterval, "time-interval", 0, "knative, classic: extra wait after the pods are gone, before each iteration")
	fl.DurationVar(&k.scaleToZeroTimeout, "scale-to-zero-timeout", 10*time.Minute, "knative, classic and pool: give up waiting for scale to zero after this long")
	fl.StringVar(&k.window, "window", "", "knative: autoscaling.knative.dev/window on every revision, e.g. 6s")
	fl.StringVar(&k.target, "target", "", "knative: autoscaling.knative.dev/target on every revision")
	fl.BoolVar(&k.configureCluster, "configure-cluster", false, "knative: set allow-zero-initial-scale for the run and restore it afterwards")
}

// Apply puts the flags into sec: all of them without a file, only those
// given on the command line with one.
func (k *flags) Apply(sec bench.Section, changed func(string) bool, fromFile bool) {
	spec := sec.(*Spec)
	set := func(name string) bool { return !fromFile || changed(name) }
	if set("kubeconfig") {
		spec.Kubeconfig = k.kubeconfig
	}
	if set("context") {
		spec.Context = k.context
	}
	if set("namespace") {
		spec.Namespace = k.namespace
	}
	if set("ingress") {
		spec.Ingress = k.ingress
	}
	if set("protocol") {
		spec.Protocol = k.protocol
	}
	if set("http") {
		spec.HTTP = k.http
	}
	if changed("pool-size") {
		spec.PoolSize = k.poolSize
	}
	if set("window") {
		spec.Window = k.window
	}
	if set("target") {
		spec.Target = k.target
	}
	if set("readiness-timeout") {
		spec.ReadinessTimeout.Duration = k.readinessTimeout
	}
	if set("time-interval") {
		spec.TimeInterval.Duration = k.timeInterval
	}
	if set("scale-to-zero-timeout") {
		spec.ScaleToZeroTimeout.Duration = k.scaleToZeroTimeout
	}
	if set("configure-cluster") {
		spec.ConfigureCluster = k.configureCluster
	}
}
