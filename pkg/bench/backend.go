package bench

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"
)

// Backend describes one platform to the experiment model and the CLI: its
// name, its section of the spec, its flags and how to build it. Each
// platform package offers one; the program that uses them registers them
// (Register), so this package knows no platform.
type Backend struct {
	// Name is the platform's name (spec.platform, --platform) and the key of
	// its section (spec.<Name>).
	Name string
	// Summary says what the platform runs on, for --platform's help.
	Summary string
	// NewSection returns an empty section: a pointer to the struct that
	// spec.<Name> decodes into.
	NewSection func() Section
	// Image is the function image of runtimes that name none ("" =
	// DefaultImage).
	Image string
	// Flags are the platform's command-line flags (nil: none).
	Flags *BackendFlags
	// Open builds the platform for exp (completed and valid), logging
	// through log (nil: not at all).
	Open func(exp *Experiment, log *slog.Logger) (Platform, error)
	// Density says its sessions keep instances between cells
	// (DensitySession): the platform runs density experiments.
	Density bool
	// Cleaned names what the platform's Clean removes, for clean's message
	// ("removed 3 coldbench <Cleaned>"); sec is the platform's section.
	// nil: "object(s)".
	Cleaned func(sec Section) string
}

// Section is a platform's part of the spec (spec.<platform name>).
type Section interface {
	// Complete fills the section's defaults; it changes nothing that is set.
	Complete()
	// Validate adds a problem per invalid field, each naming the field
	// (spec.<platform>.<field>) and the fix. It changes nothing.
	Validate(errs *Problems)
}

// RecordFixer is implemented by sections that accept what older versions
// recorded and the current ones refuse: LoadResume calls FixRecorded on the
// recorded experiment's sections before validating them.
type RecordFixer interface {
	FixRecorded()
}

// Flags are one command's values of a platform's flags.
type Flags interface {
	// Register adds the flags to fl.
	Register(fl *pflag.FlagSet)
	// Apply copies the flags into sec (the platform's section): every flag
	// when fromFile is false, else those changed reports as given.
	Apply(sec Section, changed func(flag string) bool, fromFile bool)
}

// BackendFlags describes a platform's flags to the CLI.
type BackendFlags struct {
	// New returns fresh values, one per command that registers them.
	New func() Flags
	// Names are every flag Register adds: given with another platform, they
	// are refused (Refusal) rather than ignored.
	Names []string
	// Doctor and Clean are the flags those verbs use (run uses all).
	Doctor, Clean []string
	// Resume are the flags that say where to run, which `run --resume` may
	// change.
	Resume []string
	// Refusal is the format of the error for one of Names given with
	// another platform; its arguments are the flag's and that platform's
	// names.
	Refusal string
}

// Problems collects what validation finds, each naming the field and the fix.
type Problems []string

// Add appends one problem.
func (p *Problems) Add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// The registry is global because the set of platforms is the program's, as
// its flags are; Register is called once per platform, before any
// experiment is decoded.
var registry struct {
	sync.RWMutex
	list []*Backend
}

// Register adds b to the platforms an experiment can name, after those
// registered before (the order of help texts and messages). It panics on
// an incomplete backend or a name registered twice: a wiring mistake.
func Register(b Backend) {
	if b.Name == "" || b.NewSection == nil || b.Open == nil {
		panic(fmt.Sprintf("bench.Register: backend %q lacks a name, NewSection or Open", b.Name))
	}
	if t := reflect.TypeOf(b.NewSection()); t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("bench.Register: backend %q: section %v is not a pointer to a struct", b.Name, t))
	}
	// The section is spec.<name>, next to Spec's own fields: a name taken
	// by one would give the JSON two keys alike, and encoding/json drops both.
	st := reflect.TypeOf(Spec{})
	for i := range st.NumField() {
		if tag, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ","); tag == b.Name {
			panic("bench.Register: backend " + b.Name + ": spec." + tag + " is a field of every spec")
		}
	}
	registry.Lock()
	defer registry.Unlock()
	if slices.ContainsFunc(registry.list, func(o *Backend) bool { return o.Name == b.Name }) {
		panic("bench.Register: backend " + b.Name + " registered twice")
	}
	registry.list = append(registry.list, &b)
}

// LookupBackend returns the registered backend named name, or nil.
func LookupBackend(name string) *Backend {
	registry.RLock()
	defer registry.RUnlock()
	for _, b := range registry.list {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Backends returns the registered backends in the order of registration.
func Backends() []*Backend {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Clone(registry.list)
}

// BackendNames returns the registered backends' names, in order.
func BackendNames() []string {
	var names []string
	for _, b := range Backends() {
		names = append(names, b.Name)
	}
	return names
}

// OrList joins words as "a, b or c".
func OrList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// Section returns the section of the platform named name, or nil.
func (s *Spec) Section(name string) Section {
	sec := s.Sections[name]
	if sec == nil || reflect.ValueOf(sec).IsNil() {
		return nil
	}
	return sec
}

// SetSection sets the section of the platform named name (nil removes it).
func (s *Spec) SetSection(name string, sec Section) {
	if sec == nil {
		delete(s.Sections, name)
		return
	}
	if s.Sections == nil {
		s.Sections = map[string]Section{}
	}
	s.Sections[name] = sec
}
