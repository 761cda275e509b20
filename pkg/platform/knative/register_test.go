package knative

import "github.com/coldbench/coldbench/pkg/bench"

// The tests complete and validate experiments, which needs the platform
// registered, as the CLI does.
func init() { bench.Register(Backend()) }
