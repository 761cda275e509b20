// Package bench defines an experiment (what to measure), validates it, and
// runs it against a platform, streaming one record per attempt.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"

	"github.com/coldbench/coldbench/pkg/capacity"
)

const (
	APIVersion = "coldbench.dev/v1alpha1"
	Kind       = "Experiment"

	// DefaultPlatform is the platform of Default (README's first command):
	// a name only, the platform itself is registered (Register).
	DefaultPlatform = "node"

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
	// DefaultPort is the port the function images listen on.
	DefaultPort = 8080
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
	ProbeInterval Duration `json:"probeInterval"`
	Output        string   `json:"output,omitempty"`
	// Footprint sets how each instance's footprint (memory, CPU) is
	// measured; Complete fills it in.
	Footprint *FootprintSpec `json:"footprint,omitempty"`
	// Search, when set, makes the run a capacity search (search.go): N is
	// chosen probe by probe instead of taken from Scales, which stay empty.
	Search *capacity.Search `json:"search,omitempty"`
	// Density, when set, makes the run a density run (density.go):
	// instances are kept between steps; Scales stay empty.
	Density *DensitySpec `json:"density,omitempty"`
	// Sections holds each platform's section (spec.<platform>, e.g.
	// spec.node), owned by the platform's package (see Backend). They are
	// written after the fields above (wire.go).
	Sections map[string]Section `json:"-"`
}

// FootprintSpec sets the footprint measurement (each platform's
// measure_footprint.go).
type FootprintSpec struct {
	// Off measures no footprint: to compare latencies with and without it.
	Off bool `json:"off,omitempty"`
	// Settle is how long a cell's instances are left idle after its last
	// reply before their memory and idle CPU are read; the teardown waits
	// as long.
	Settle Duration `json:"settle"`
	// Interleave measures the footprint of odd iterations only: the even
	// ones, measured in the same run between them, are the control of an
	// A/B that shows whether measuring changes latency (bench/footprint-ab).
	Interleave bool `json:"interleave,omitempty"`
}

// DefaultFootprintSettle: an idle Go function's PSS and cgroup memory on
// the node backend are flat from well under a second after its reply (see
// docs/footprint.md), and each cell waits this long before its teardown.
const DefaultFootprintSettle = 2 * time.Second

// MaxFootprintSettle bounds spec.footprint.settle: a settle this long is a
// typo, and every cell waits it.
const MaxFootprintSettle = 10 * time.Minute

// Runtime is one column of the runtime matrix.
type Runtime struct {
	Name string `json:"name"`
	// Handler is the CRI runtime handler (node) or RuntimeClass name
	// (knative); empty means the platform's default runtime.
	Handler     string            `json:"handler"`
	Image       string            `json:"image,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Default returns the experiment the README's first command runs.
func Default() *Experiment {
	return &Experiment{
		APIVersion: APIVersion,
		Kind:       Kind,
		Spec: Spec{
			Platform: DefaultPlatform,
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
	secs := wireSections(&exp.Spec)
	w := wireExperiment(exp, secs)
	if err := decodeStrict(js, w.Addr().Interface()); err != nil {
		return nil, fmt.Errorf("experiment file: %w", err)
	}
	fromWireExperiment(w, exp, secs)
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
// its platform and that section's defaults (Section.Complete) and each
// runtime's image (the platform's, Backend.Image). It changes nothing that
// is set, so it may run twice, and checks nothing: Validate does.
func (e *Experiment) Complete() {
	s := &e.Spec
	image := DefaultImage
	if b := LookupBackend(s.Platform); b != nil {
		sec := s.Section(b.Name)
		if sec == nil {
			sec = b.NewSection()
			s.SetSection(b.Name, sec)
		}
		sec.Complete()
		if b.Image != "" {
			image = b.Image
		}
	}
	for i := range s.Runtimes {
		if s.Runtimes[i].Image == "" {
			s.Runtimes[i].Image = image
		}
	}
	if s.Search != nil {
		s.Search.Complete(MaxScale)
	}
	if s.Density != nil {
		s.Density.Complete()
	}
	if s.Footprint == nil {
		s.Footprint = &FootprintSpec{}
	}
	if !s.Footprint.Off && s.Footprint.Settle.Duration == 0 {
		s.Footprint.Settle = Duration{DefaultFootprintSettle}
	}
}

// CompleteAndValidate completes the experiment, then validates it: what
// every caller about to run (or check) an experiment needs.
func (e *Experiment) CompleteAndValidate(force bool) error {
	e.Complete()
	return e.Validate(force)
}

// Validate checks everything that can be checked without touching a
// platform and reports every problem at once. It changes nothing: an
// experiment that is not completed (Complete) is refused for what
// Complete would have filled in.
func (e *Experiment) Validate(force bool) error {
	s := &e.Spec
	var errs Problems
	s.validatePlatform(&errs)
	s.validateRuntimes(&errs)
	switch {
	case s.Density != nil:
		s.validateDensity(&errs, force) // density.go
	case s.Search != nil:
		s.validateSearch(&errs, force) // search.go
	default:
		s.validateScales(&errs, force)
	}
	s.validateCounts(&errs)
	s.validateImages(&errs)
	if s.Output != "" {
		if st, err := os.Stat(s.Output); err == nil && st.IsDir() {
			errs.Add("spec.output (--output): %q is a directory; give the records file's name, e.g. %s", s.Output, filepath.Join(s.Output, "study.jsonl"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid experiment:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// validatePlatform checks the platform's name, that only its section is
// set, and that section (nil: as if empty).
func (s *Spec) validatePlatform(errs *Problems) {
	b := LookupBackend(s.Platform)
	if b == nil {
		names := BackendNames()
		for i, n := range names {
			names[i] = strconv.Quote(n)
		}
		errs.Add("spec.platform: unknown platform %q; use %s", s.Platform, OrList(names))
		return
	}
	var others []string
	for name := range s.Sections {
		if name != b.Name && s.Section(name) != nil {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		errs.Add("spec.%s: set, but spec.platform is %q; remove it or set platform: %s", name, s.Platform, name)
	}
	sec := s.Section(b.Name)
	if sec == nil {
		sec = b.NewSection()
	}
	sec.Validate(errs)
}

func (s *Spec) validateRuntimes(errs *Problems) {
	if len(s.Runtimes) == 0 {
		errs.Add("spec.runtimes: no runtime given; name at least one, e.g. --runtimes runc,crun")
	}
	seen := map[string]bool{}
	for i, r := range s.Runtimes {
		field := fmt.Sprintf("spec.runtimes[%d]", i)
		switch {
		case r.Name == "":
			errs.Add("%s.name: empty; give each runtime a name (use %q for the platform's default runtime)", field, DefaultRuntimeName)
		case !ValidName(r.Name):
			errs.Add("%s.name: %q is not a valid name; use lower-case letters, digits and '-', at most 63 characters", field, r.Name)
		case seen[r.Name]:
			errs.Add("%s.name: %q appears twice; runtime names must be unique", field, r.Name)
		}
		seen[r.Name] = true
		if r.Handler != "" && !ValidName(r.Handler) {
			errs.Add("%s.handler: %q is not a valid handler/RuntimeClass name; use lower-case letters, digits and '-'", field, r.Handler)
		}
	}
}

func (s *Spec) validateScales(errs *Problems, force bool) {
	if len(s.Scales) == 0 {
		errs.Add("spec.scales: empty; give at least one N, e.g. --scales 1,4")
	}
	seenN := map[int]bool{}
	for i, n := range s.Scales {
		switch {
		case n < 1:
			errs.Add("spec.scales[%d]: N = %d; N is the number of instances cold-started at once and must be at least 1", i, n)
		case n > HardMaxScale:
			errs.Add("spec.scales[%d]: N = %d is above the hard limit of %d", i, n, HardMaxScale)
		case n > MaxScale && !force:
			errs.Add("spec.scales[%d]: N = %d is above the sane cap of %d; pass --force if you mean it", i, n, MaxScale)
		case seenN[n]:
			errs.Add("spec.scales[%d]: N = %d appears twice", i, n)
		}
		seenN[n] = true
	}
}

// validateCounts checks the iteration counts and the run's durations.
func (s *Spec) validateCounts(errs *Problems) {
	if s.Iterations < 1 || s.Iterations > MaxIterations {
		errs.Add("spec.iterations: %d; must be between 1 and %d", s.Iterations, MaxIterations)
	}
	if s.Warmups < 0 || s.Warmups > MaxIterations {
		errs.Add("spec.warmups: %d; must be between 0 and %d", s.Warmups, MaxIterations)
	}
	if s.RequestTimeout.Duration <= 0 {
		errs.Add("spec.requestTimeout: %v; must be positive, e.g. 30s", s.RequestTimeout.Duration)
	}
	if s.Deadline.Duration <= 0 {
		errs.Add("spec.deadline: %v; must be positive, e.g. 30m", s.Deadline.Duration)
	}
	if s.ProbeInterval.Duration < 100*time.Microsecond || s.ProbeInterval.Duration > time.Second {
		errs.Add("spec.probeInterval: %v; must be between 100µs and 1s (a new GET is started this often)", s.ProbeInterval.Duration)
	} else if s.RequestTimeout.Duration > 0 && s.ProbeInterval.Duration >= s.RequestTimeout.Duration {
		errs.Add("spec.probeInterval: %v is not shorter than spec.requestTimeout %v", s.ProbeInterval.Duration, s.RequestTimeout.Duration)
	}
	if f := s.Footprint; f == nil {
		errs.Add("spec.footprint: not set; complete the experiment first (bench.Experiment.Complete sets the defaults)")
	} else {
		if !f.Off && (f.Settle.Duration < time.Second || f.Settle.Duration > MaxFootprintSettle) {
			errs.Add("spec.footprint.settle (--footprint-settle): %v; must be between 1s and %v (the instances idle this long before memory and idle CPU are read), or turn footprint off (--footprint=false)", f.Settle.Duration, MaxFootprintSettle)
		}
		switch {
		case !f.Interleave:
		case f.Off:
			errs.Add("spec.footprint.interleave (--footprint-interleave): set with footprint off; an interleaved A/B measures the footprint of odd iterations: turn footprint on, or drop the interleave")
		case s.Search != nil || s.Density != nil:
			errs.Add("spec.footprint.interleave (--footprint-interleave): a capacity search's or density run's iterations are not repeats of one step; interleave only a sweep")
		case s.Iterations < 2:
			errs.Add("spec.footprint.interleave (--footprint-interleave): %d iteration(s); the A/B needs at least 2 (even ones without footprint, odd ones with)", s.Iterations)
		}
	}
}

func (s *Spec) validateImages(errs *Problems) {
	for i, r := range s.Runtimes {
		if _, err := name.ParseReference(r.Image); err != nil {
			errs.Add("spec.runtimes[%d].image (--image): %q is not an image reference; write e.g. %s", i, r.Image, DefaultImage)
		}
	}
}

// ValidName reports whether name is a DNS-1123 label: what Kubernetes
// accepts as a name, and safe in file names.
func ValidName(name string) bool { return len(name) <= 63 && nameRE.MatchString(name) }

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
