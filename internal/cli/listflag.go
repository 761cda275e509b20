package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
)

// listError is a list flag's refusal. It names the flag, the value and the
// fix; the root's flag error handler prints it without pflag's wrapping.
type listError struct {
	flag, value, problem, fix string
}

func (e *listError) Error() string {
	return fmt.Sprintf("--%s %q: %s; %s", e.flag, e.value, e.problem, e.fix)
}

// splitList splits a comma-separated flag value and refuses empty elements
// and elements with white space: "1,,2", "runc," and "runc, crun" are
// typos, not lists with a default in them.
func splitList(flag, value, fix string) ([]string, error) {
	fail := func(format string, a ...any) error {
		return &listError{flag: flag, value: value, problem: fmt.Sprintf(format, a...), fix: fix}
	}
	if value == "" {
		return nil, fail("empty")
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		switch {
		case p == "":
			return nil, fail("element %d is empty", i+1)
		case strings.IndexFunc(p, unicode.IsSpace) >= 0:
			return nil, fail("element %d (%q) contains white space", i+1, p)
		}
	}
	return parts, nil
}

// intList is a pflag.Value for a list of distinct N values (positive
// integers), e.g. --scales 1,4,8. Given twice, the flag's lists are joined.
type intList struct {
	flag    string
	what    string // what the values are, e.g. "N values"
	example string
	vals    *[]int
	changed bool
}

// newIntList binds p (which keeps its default until the flag is given).
func newIntList(p *[]int, flag, what, example string) *intList {
	return &intList{flag: flag, what: what, example: example, vals: p}
}

func (l *intList) fix() string {
	return "give " + l.what + " separated by commas, e.g. --" + l.flag + " " + l.example
}

func (l *intList) Set(value string) error {
	parts, err := splitList(l.flag, value, l.fix())
	if err != nil {
		return err
	}
	var out []int
	if l.changed {
		out = append(out, *l.vals...)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		switch {
		case err != nil:
			return &listError{flag: l.flag, value: value, problem: fmt.Sprintf("element %d (%q) is not a whole number", i+1, p), fix: l.fix()}
		case n < 1:
			return &listError{flag: l.flag, value: value, problem: fmt.Sprintf("element %d is N = %d; N (instances cold-started at once) must be at least 1", i+1, n), fix: l.fix()}
		}
		if slices.Contains(out, n) {
			return &listError{flag: l.flag, value: value, problem: fmt.Sprintf("%d appears twice", n), fix: "give each value once"}
		}
		out = append(out, n)
	}
	*l.vals, l.changed = out, true
	return nil
}

func (l *intList) Type() string { return "ints" }

func (l *intList) String() string {
	s := make([]string, len(*l.vals))
	for i, n := range *l.vals {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// nameList is a pflag.Value for a list of distinct names, e.g. --runtimes
// runc,crun. valid, if set, checks one element and says why it is refused.
type nameList struct {
	flag    string
	example string
	vals    *[]string
	valid   func(string) error
	changed bool
}

func newNameList(p *[]string, flag, example string, valid func(string) error) *nameList {
	return &nameList{flag: flag, example: example, vals: p, valid: valid}
}

func (l *nameList) fix() string {
	return "give names separated by commas, without spaces, e.g. --" + l.flag + " " + l.example
}

func (l *nameList) Set(value string) error {
	parts, err := splitList(l.flag, value, l.fix())
	if err != nil {
		return err
	}
	var out []string
	if l.changed {
		out = append(out, *l.vals...)
	}
	for i, p := range parts {
		if l.valid != nil {
			if err := l.valid(p); err != nil {
				return &listError{flag: l.flag, value: value, problem: fmt.Sprintf("element %d (%q): %v", i+1, p, err), fix: l.fix()}
			}
		}
		if slices.Contains(out, p) {
			return &listError{flag: l.flag, value: value, problem: fmt.Sprintf("%q appears twice", p), fix: "give each name once"}
		}
		out = append(out, p)
	}
	*l.vals, l.changed = out, true
	return nil
}

func (l *nameList) Type() string { return "strings" }

func (l *nameList) String() string { return strings.Join(*l.vals, ",") }

var (
	_ pflag.Value = (*intList)(nil)
	_ pflag.Value = (*nameList)(nil)
)
