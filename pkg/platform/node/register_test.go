package node_test

import (
	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/platform/node"
)

// The tests complete and validate experiments, which needs the platform
// registered, as the CLI does.
func init() { bench.Register(node.Backend()) }
