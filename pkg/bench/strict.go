package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	kjson "sigs.k8s.io/json"
)

// decodeStrict decodes the JSON js into v (a pointer to a struct) the way
// Kubernetes decodes objects (sigs.k8s.io/json): keys match field names
// case-sensitively, and every unknown field is an error naming its path
// ("spec.runtimes[0].runtimeClass"), with a hint where a known field is
// spelt alike. Like encoding/json, the decoder stops at the first value of
// the wrong type (a malformed duration included) and names its field; the
// unknown fields are reported once the values decode.
func decodeStrict(js []byte, v any) error {
	unknown, err := kjson.UnmarshalStrict(js, v, kjson.DisallowUnknownFields)
	if err != nil {
		return errors.New(describeJSONError(err))
	}
	if len(unknown) == 0 {
		return nil
	}
	msgs := make([]string, len(unknown))
	for i, u := range unknown {
		msgs[i] = u.Error() // unknown field "<path>"
		var fe kjson.FieldError
		if errors.As(u, &fe) {
			if s := similarField(reflect.TypeOf(v), fe.FieldPath()); s != "" {
				msgs[i] += fmt.Sprintf(" (did you mean %q?)", s)
			}
		}
	}
	sort.Strings(msgs)
	return fmt.Errorf("%s; see the example in README.md", strings.Join(msgs, "; "))
}

// describeJSONError names the field of a value of the wrong type.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Type == reflect.TypeFor[Duration]():
		return fmt.Sprintf("field %q: %s is not a duration; write e.g. \"30s\" or \"500ms\"; see the example in README.md", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, got a %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// similarField returns the path of the known field spelt most like the
// unknown one at path (as sigs.k8s.io/json writes it), or "". The library
// says which field is unknown but not which were meant: this walks the
// path through the types that the decoder walked, to the struct that lacks
// the field.
func similarField(t reflect.Type, path string) string {
	walked := ""
	for {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array: // path: "[i]..."
			end := strings.IndexByte(path, ']')
			if !strings.HasPrefix(path, "[") || end < 0 {
				return ""
			}
			walked, path, t = walked+path[:end+1], strings.TrimPrefix(path[end+1:], "."), t.Elem()
		case reflect.Struct: // path: "field..."
			fields := jsonFields(t)
			name, rest := path, ""
			if i := strings.IndexAny(path, ".["); i >= 0 {
				name, rest = path[:i], strings.TrimPrefix(path[i:], ".")
			}
			ft, ok := fields[name]
			if !ok || rest == "" { // path is the unknown key (which may hold a '.')
				if s := suggest(path, fields); s != "" {
					return join(walked, s)
				}
				return ""
			}
			walked, path, t = join(walked, name), rest, ft
		default:
			return ""
		}
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// suggest returns the known field closest to k (case-insensitive edit
// distance at most 2), or "".
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if d := editDistance(strings.ToLower(k), strings.ToLower(f)); d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
