package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/pflag"
)

var listSeeds = []string{"1,4,8", "1,,2", "1,", ",", "", " 1", "1, 2", "1,1", "-1", "0", "+3", "007,7",
	"99999999999999999999", "runc,crun", "runc,", "runc, crun", "default,runc", "a,a", "a\tb", "\u00a0a"}

// parseList sets value through pflag, as the command line does.
func parseList(v pflag.Value, name, value string) error {
	fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
	fs.Var(v, name, "")
	return fs.Parse([]string{"--" + name + "=" + value})
}

// checkRejection: a refused list names its flag and the value, and leaves
// the flag's value as it was.
func checkRejection(t *testing.T, err error, name, value string) {
	var le *listError
	if !errors.As(err, &le) {
		t.Fatalf("%q: error %v is not a listError", value, err)
	}
	if !strings.HasPrefix(le.Error(), "--"+name+" ") || le.value != value {
		t.Fatalf("%q: error %q does not name --%s and the value", value, le.Error(), name)
	}
}

func FuzzIntList(f *testing.F) {
	for _, s := range listSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v []int
		err := parseList(newIntList(&v, "scales", "N values", "1,4,8"), "scales", s)
		if err != nil {
			checkRejection(t, err, "scales", s)
			if v != nil {
				t.Fatalf("%q refused but the value changed to %v", s, v)
			}
			return
		}
		if len(v) != strings.Count(s, ",")+1 {
			t.Fatalf("%q: %d values from %d elements", s, len(v), strings.Count(s, ",")+1)
		}
		for i, n := range v {
			if n < 1 || slices.Index(v, n) != i {
				t.Fatalf("%q accepted as %v: non-positive or duplicate %d", s, v, n)
			}
		}
		var w []int
		back := newIntList(&v, "scales", "N values", "1,4,8").String()
		if err := parseList(newIntList(&w, "scales", "N values", "1,4,8"), "scales", back); err != nil || !slices.Equal(v, w) {
			t.Fatalf("%q → %v → %q → %v, %v: no round trip", s, v, back, w, err)
		}
	})
}

func FuzzNameList(f *testing.F) {
	for _, s := range listSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v []string
		err := parseList(newNameList(&v, "runtimes", "runc,crun", nil), "runtimes", s)
		if err != nil {
			checkRejection(t, err, "runtimes", s)
			if v != nil {
				t.Fatalf("%q refused but the value changed to %v", s, v)
			}
			return
		}
		if len(v) != strings.Count(s, ",")+1 {
			t.Fatalf("%q: %d names from %d elements", s, len(v), strings.Count(s, ",")+1)
		}
		for i, n := range v {
			if n == "" || strings.ContainsRune(n, ',') || strings.IndexFunc(n, unicode.IsSpace) >= 0 || slices.Index(v, n) != i {
				t.Fatalf("%q accepted as %q: empty, spaced or duplicate element %q", s, v, n)
			}
		}
		var w []string
		back := newNameList(&v, "runtimes", "runc,crun", nil).String()
		if err := parseList(newNameList(&w, "runtimes", "runc,crun", nil), "runtimes", back); err != nil || !slices.Equal(v, w) {
			t.Fatalf("%q → %q → %q → %q, %v: no round trip", s, v, back, w, err)
		}
	})
}
