package e2e

import (
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/knative"
	"github.com/coldbench/coldbench/pkg/platform/node"
)

// The tests read experiments from records' headers, whose sections are the
// platforms' own: registered as the CLI does.
func init() {
	bench.Register(node.Backend())
	bench.Register(knative.Backend())
}
