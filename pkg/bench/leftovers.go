package bench

import "context"

// Leftover is one kind of object a run left behind: how many, and a few of
// their names.
type Leftover struct {
	Kind  string // e.g. "ksvc", "pod", "sandbox"
	Count int
	Names []string // a few of them, for messages
}

// Inventory is implemented by platforms that can say what an experiment
// left behind, so that a run whose clean-up failed names it and the command
// that removes it, rather than exiting as if nothing were left.
type Inventory interface {
	// Leftovers lists what carries experimentID's labels.
	Leftovers(ctx context.Context, experimentID string) ([]Leftover, error)
	// CleanFlags are the flags with which `coldbench clean` finds these
	// objects (--platform and where: cluster, namespace, socket), all but
	// --experiment.
	CleanFlags() []string
}
