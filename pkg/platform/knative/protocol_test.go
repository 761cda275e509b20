package knative

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// The protocol is chosen in one place (protocol.go) and what differs lives
// in its own file: no other code of the package reads spec.Protocol or
// names a protocol — except the spec's own definition, flags and validation
// (config.go, flags.go), which decide nothing at run time.
func TestOnlyProtocolFilesKnowTheProtocols(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "protocol") ||
			name == "config.go" || name == "flags.go" {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			// Every name, bare or after a dot, is an Ident.
			if id, ok := n.(*ast.Ident); ok && protocolSpecific(id.Name) {
				t.Errorf("%s: %s: the protocol belongs in the protocol*.go files", fset.Position(id.Pos()), id.Name)
			}
			return true
		})
	}
}

// protocolSpecific: the names that choose a protocol or read a setting of
// one protocol only.
func protocolSpecific(name string) bool {
	return strings.HasPrefix(name, "Protocol") || name == "PoolSize" || name == "PoolSets" || name == "TimeInterval"
}

// Each protocol says the name it is chosen by: the testbed records it.
func TestProtocolNames(t *testing.T) {
	for name, mk := range protocols {
		if got := mk(&session{}).name(); got != name {
			t.Errorf("protocol chosen as %q calls itself %q", name, got)
		}
	}
}
