package bench

import (
	"strings"
	"testing"
)

const minimalYAML = "apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n  runtimes: [{name: runc, handler: runc}]\n  scales: [1]\n"

// A tab in the indentation is named as such, with its line.
func TestDecodeTabIndent(t *testing.T) {
	data := "apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\nspec:\n\tscales: [1]\n"
	_, err := Decode([]byte(data))
	if err == nil || !strings.Contains(err.Error(), "line 4: a tab character; YAML indents with spaces") {
		t.Fatalf("got %v, want the tab on line 4 named", err)
	}
}

// A byte-order mark at the start is dropped; elsewhere it is refused by
// name, and a file of only a BOM is empty.
func TestDecodeByteOrderMark(t *testing.T) {
	if _, err := Decode([]byte("\ufeff" + minimalYAML)); err != nil {
		t.Errorf("leading BOM: %v", err)
	}
	if _, err := Decode([]byte("\ufeff\n")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("only a BOM: got %v, want the file called empty", err)
	}
	_, err := Decode([]byte("---\n\ufeff" + minimalYAML))
	if err == nil || !strings.Contains(err.Error(), "line 2: a UTF-8 byte-order mark") {
		t.Errorf("BOM inside: got %v, want it named on line 2", err)
	}
}

// Unknown fields are named by their path, at any depth, each with the
// known field spelt alike; keys match case-sensitively.
func TestDecodeUnknownFieldHints(t *testing.T) {
	const head = "apiVersion: coldbench.dev/v1alpha1\nkind: Experiment\n"
	for _, tc := range []struct{ yaml, want string }{
		{"spec:\n  Iterations: 3\n", `unknown field "spec.Iterations" (did you mean "spec.iterations"?)`},
		{"metadta: {name: x}\n", `unknown field "metadta" (did you mean "metadata"?)`},
		{"spec:\n  runtimes: [{name: a}, {nme: b}]\n", `unknown field "spec.runtimes[1].nme" (did you mean "spec.runtimes[1].name"?)`},
		{"spec:\n  knative: {protocl: pool, namespase: x}\n",
			`unknown field "spec.knative.namespase" (did you mean "spec.knative.namespace"?); unknown field "spec.knative.protocl" (did you mean "spec.knative.protocol"?)`},
		{"spec:\n  foo.bar: 1\n", `unknown field "spec.foo.bar"; see`},
		{"spec:\n  requestTimeout:\n", `field "spec.requestTimeout": null is not a duration`},
	} {
		if _, err := Decode([]byte(head + tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
