package node

import (
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/coldbench/coldbench/pkg/bench"
)

// Name is the platform's name (spec.platform, --platform) and its section's
// key (spec.node).
const Name = "node"

// DefaultEndpoint is coldbench's containerd's CRI socket.
const DefaultEndpoint = "unix:///run/coldbench/containerd/containerd.sock"

// Spec configures the node backend (containerd over CRI): the experiment's
// spec.node.
type Spec struct {
	Endpoint string `json:"endpoint,omitempty"`
	// Port the function listens on inside the pod.
	Port int `json:"port,omitempty"`
}

// SpecOf returns exp's node section, or nil.
func SpecOf(exp *bench.Experiment) *Spec {
	n, _ := exp.Spec.Section(Name).(*Spec)
	return n
}

// Complete fills the endpoint and the port.
func (n *Spec) Complete() {
	if n.Endpoint == "" {
		n.Endpoint = DefaultEndpoint
	}
	if n.Port == 0 {
		n.Port = bench.DefaultPort
	}
}

// Validate checks the section.
func (n *Spec) Validate(errs *bench.Problems) {
	if n.Port < 1 || n.Port > 65535 {
		errs.Add("spec.node.port: %d; must be a TCP port (1-65535)", n.Port)
	}
	if !strings.HasPrefix(n.Endpoint, "unix://") && !strings.HasPrefix(n.Endpoint, "/") {
		errs.Add("spec.node.endpoint: %q; give containerd's CRI socket as unix:///path/to.sock", n.Endpoint)
	}
}

// Backend describes the node platform to the experiment model and the CLI;
// the program registers it (bench.Register).
func Backend() bench.Backend {
	return bench.Backend{
		Name:       Name,
		Summary:    "containerd CRI on this host",
		NewSection: func() bench.Section { return &Spec{} },
		Flags: &bench.BackendFlags{
			New:    func() bench.Flags { return &flags{} },
			Names:  []string{"endpoint", "port"},
			Doctor: []string{"endpoint"},
			Clean:  []string{"endpoint"},
			// Where to run: the same node's containerd at another socket.
			Resume:  []string{"endpoint"},
			Refusal: "--%s applies only to --platform node (the platform is %q); drop it",
		},
		Open: func(exp *bench.Experiment, log *slog.Logger) (bench.Platform, error) {
			n := SpecOf(exp)
			return New(n.Endpoint, n.Port, log)
		},
		Cleaned: func(bench.Section) string { return "sandbox(es)" },
		Density: true,
	}
}

// flags are the node platform's flags.
type flags struct {
	endpoint string
	port     int
}

func (f *flags) Register(fl *pflag.FlagSet) {
	fl.StringVar(&f.endpoint, "endpoint", DefaultEndpoint, "node platform: containerd CRI socket")
	fl.IntVar(&f.port, "port", bench.DefaultPort, "node platform: port the function listens on")
}

// Apply puts the flags into sec: all of them without a file, only those
// given on the command line with one.
func (f *flags) Apply(sec bench.Section, changed func(string) bool, fromFile bool) {
	n := sec.(*Spec)
	if !fromFile || changed("endpoint") {
		n.Endpoint = f.endpoint
	}
	if !fromFile || changed("port") {
		n.Port = f.port
	}
}
