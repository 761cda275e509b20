package bench

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// unknownFields walks decoded JSON against the struct type it is meant for
// and returns the path of every field the type does not have, with a hint
// when a known field is spelled alike, and of every malformed duration. encoding/json names the field but
// not where it is, which is not enough in a nested file.
func unknownFields(v any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	if t == reflect.TypeOf(Duration{}) {
		str, ok := v.(string)
		if _, err := time.ParseDuration(str); !ok || err != nil {
			out = append(out, fmt.Sprintf("field %q: %v is not a duration; write e.g. \"30s\" or \"500ms\"", path, v))
		}
		return out
	}
	switch val := v.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for k, e := range val {
				out = append(out, unknownFields(e, t.Elem(), join(path, k))...)
			}
			break
		}
		if t.Kind() != reflect.Struct {
			break
		}
		fields := jsonFields(t)
		for k, e := range val {
			ft, ok := fields[k]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", join(path, k))
				if s := suggest(k, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", join(path, s))
				}
				out = append(out, msg)
				continue
			}
			out = append(out, unknownFields(e, ft, join(path, k))...)
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range val {
				out = append(out, unknownFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	sort.Strings(out)
	return out
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
