package cli

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
)

// knativeFlags are the knative platform's flags, shared by run, doctor and
// clean (kubectl's names where kubectl has one).
type knativeFlags struct {
	kubeconfig, context, namespace, ingress, protocol, window, target string
	http                                                              string
	readinessTimeout, timeInterval, scaleToZeroTimeout                time.Duration
	configureCluster                                                  bool
	poolSize                                                          int
}

// knativeFlagNames are the flags register adds: they apply to --platform
// knative only.
var knativeFlagNames = []string{"kubeconfig", "context", "namespace", "ingress", "protocol", "http", "pool-size",
	"readiness-timeout", "time-interval", "scale-to-zero-timeout", "window", "target", "configure-cluster"}

func (k *knativeFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&k.kubeconfig, "kubeconfig", "", "knative: kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&k.context, "context", "", "knative: kubeconfig context")
	fl.StringVarP(&k.namespace, "namespace", "n", "coldbench", "knative: namespace for coldbench's services (created if absent)")
	fl.StringVar(&k.ingress, "ingress", "", "knative: ingress HOST:PORT (default: detect Kourier, Istio, Contour or Traefik)")
	fl.StringVar(&k.protocol, "protocol", bench.ProtocolFresh, "knative: cold protocol: fresh (a new service per sample: first activation), pool (sets of services used in turn: re-activation, like classic, without its wait) or classic (wait for scale to zero, like the study)")
	fl.StringVar(&k.http, "http", bench.HTTP1, "knative: HTTP of the measured requests: http1 (one connection per request, like the study) or h2c (HTTP/2 cleartext: a step's requests multiplexed on a few connections, each released in one write; the ingress must accept h2c)")
	fl.IntVar(&k.poolSize, "pool-size", 0, fmt.Sprintf("knative, pool: service sets used in turn (default %d; fewer when sets × N > %d)", bench.DefaultPoolSize, bench.MaxPoolServices))
	fl.DurationVar(&k.readinessTimeout, "readiness-timeout", 3*time.Minute, "knative: wait this long for services to be Ready (untimed)")
	fl.DurationVar(&k.timeInterval, "time-interval", 0, "knative, classic: extra wait after the pods are gone, before each iteration")
	fl.DurationVar(&k.scaleToZeroTimeout, "scale-to-zero-timeout", 10*time.Minute, "knative, classic and pool: give up waiting for scale to zero after this long")
	fl.StringVar(&k.window, "window", "", "knative: autoscaling.knative.dev/window on every revision, e.g. 6s")
	fl.StringVar(&k.target, "target", "", "knative: autoscaling.knative.dev/target on every revision")
	fl.BoolVar(&k.configureCluster, "configure-cluster", false, "knative: set allow-zero-initial-scale for the run and restore it afterwards")
}

// apply puts the flags into spec: all of them without a file, only those
// given on the command line with one.
func (k *knativeFlags) apply(changed func(string) bool, fromFile bool, spec *bench.KnativeSpec) {
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

func newDoctorCmd(log *slog.Logger) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that a platform can run an experiment, and say what to fix",
		Long: `doctor runs the checks run makes before creating anything: on knative, that
Knative Serving is installed (and its version), the runtimeclassname feature flag,
allow-zero-initial-scale, every requested RuntimeClass, permissions in the
namespace, and that the ingress answers; on node, that containerd answers CRI
and has every handler and image. It changes nothing.`,
		Example: `  coldbench doctor --platform knative --runtimes default,runc,crun,kata-fc`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := f.experiment(cmd)
			if err != nil {
				return usageError(err)
			}
			return doctor(cmd.Context(), cmd, log, exp)
		},
	}
	f.registerOn(cmd, "file", "platform", "runtimes", "image", "endpoint",
		"kubeconfig", "context", "namespace", "ingress", "http", "configure-cluster")
	f.force = true // doctor runs no matrix: the scales' cap is no concern
	return cmd
}

// doctor prints every check of the experiment's platform, the same checks
// run refuses to start without.
func doctor(ctx context.Context, cmd *cobra.Command, log *slog.Logger, exp *bench.Experiment) error {
	plat, err := openPlatform(exp, log)
	if err != nil {
		return err
	}
	defer plat.Close()
	checks := plat.Checks(ctx, exp)
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	for _, c := range checks {
		mark := "ok"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, c.Name, c.Detail)
		if !c.OK {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	tw.Flush()
	if err := bench.Failed(checks); err != nil {
		return &exitError{code: ExitFailure, err: fmt.Errorf("%d check(s) failed", countFailed(checks))}
	}
	return nil
}

func countFailed(cs []bench.Check) int {
	n := 0
	for _, c := range cs {
		if !c.OK {
			n++
		}
	}
	return n
}
