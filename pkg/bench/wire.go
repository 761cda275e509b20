package bench

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// The spec is written and read as a struct made at run time: Spec's fields,
// then one pointer field per platform section keyed by the platform's name.
// encoding/json (and the strict decoder, with its field paths and "did you
// mean" hints) then sees the same struct as when the sections were fields
// of Spec, so records' headers stay byte-identical and errors name
// "spec.knative.protocol" as before.

// wireSection is one section's field in the wire struct.
type wireSection struct {
	name string
	typ  reflect.Type // a pointer to a struct
}

// wireSections lists the registered platforms' sections, in order, then
// any other section s holds (set by hand), by name.
func wireSections(s *Spec) []wireSection {
	var out []wireSection
	seen := map[string]bool{}
	for _, b := range Backends() {
		t := reflect.TypeOf(b.NewSection())
		if sec := s.Section(b.Name); sec != nil {
			t = reflect.TypeOf(sec)
		}
		out = append(out, wireSection{b.Name, t})
		seen[b.Name] = true
	}
	var others []string
	for name := range s.Sections {
		if !seen[name] && s.Section(name) != nil {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for _, name := range others {
		out = append(out, wireSection{name, reflect.TypeOf(s.Sections[name])})
	}
	return out
}

// specFieldIndexes are the indexes of Spec's fields that are written as
// themselves (all but Sections).
func specFieldIndexes() []int {
	t := reflect.TypeFor[Spec]()
	var idx []int
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("json") != "-" {
			idx = append(idx, i)
		}
	}
	return idx
}

// wireSpec returns s as a value of the wire struct of secs.
func wireSpec(s *Spec, secs []wireSection) reflect.Value {
	t := reflect.TypeFor[Spec]()
	idx := specFieldIndexes()
	fields := make([]reflect.StructField, 0, len(idx)+len(secs))
	for _, i := range idx {
		fields = append(fields, t.Field(i))
	}
	for i, sec := range secs {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("Section%d", i),
			Type: sec.typ,
			Tag:  reflect.StructTag(fmt.Sprintf(`json:"%s,omitempty"`, sec.name)),
		})
	}
	w := reflect.New(reflect.StructOf(fields)).Elem()
	sv := reflect.ValueOf(s).Elem()
	for j, i := range idx {
		w.Field(j).Set(sv.Field(i))
	}
	for j, sec := range secs {
		if v := s.Section(sec.name); v != nil {
			w.Field(len(idx) + j).Set(reflect.ValueOf(v))
		}
	}
	return w
}

// fromWire copies w (made by wireSpec with secs) back into s.
func fromWire(w reflect.Value, s *Spec, secs []wireSection) {
	idx := specFieldIndexes()
	sv := reflect.ValueOf(s).Elem()
	for j, i := range idx {
		sv.Field(i).Set(w.Field(j))
	}
	s.Sections = nil
	for j, sec := range secs {
		if f := w.Field(len(idx) + j); !f.IsNil() {
			s.SetSection(sec.name, f.Interface().(Section))
		}
	}
}

// MarshalJSON writes the spec with each section under its platform's name,
// after the other fields, as if the sections were fields of Spec.
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireSpec(&s, wireSections(&s)).Interface())
}

// UnmarshalJSON reads what MarshalJSON writes; sections of platforms not
// registered are unknown fields (ignored here; Decode refuses them).
func (s *Spec) UnmarshalJSON(b []byte) error {
	secs := wireSections(s)
	w := wireSpec(s, secs)
	if err := json.Unmarshal(b, w.Addr().Interface()); err != nil {
		return err
	}
	fromWire(w, s, secs)
	return nil
}

// wireExperiment returns e as a value of a struct like Experiment whose
// spec is the wire struct of secs, for the strict decoder.
func wireExperiment(e *Experiment, secs []wireSection) reflect.Value {
	t := reflect.TypeFor[Experiment]()
	spec := wireSpec(&e.Spec, secs)
	fields := make([]reflect.StructField, t.NumField())
	for i := range fields {
		fields[i] = t.Field(i)
		if fields[i].Type == reflect.TypeFor[Spec]() {
			fields[i].Type = spec.Type()
		}
	}
	w := reflect.New(reflect.StructOf(fields)).Elem()
	ev := reflect.ValueOf(e).Elem()
	for i := range fields {
		if fields[i].Type == spec.Type() {
			w.Field(i).Set(spec)
		} else {
			w.Field(i).Set(ev.Field(i))
		}
	}
	return w
}

// fromWireExperiment copies w (made by wireExperiment with secs) back into e.
func fromWireExperiment(w reflect.Value, e *Experiment, secs []wireSection) {
	ev := reflect.ValueOf(e).Elem()
	for i := range ev.NumField() {
		if ev.Field(i).Type() == reflect.TypeFor[Spec]() {
			fromWire(w.Field(i), &e.Spec, secs)
		} else {
			ev.Field(i).Set(w.Field(i))
		}
	}
}
