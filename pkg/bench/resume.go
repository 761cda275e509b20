package bench

import (
	"encoding/json"
	"fmt"

	"github.com/coldbench/coldbench/pkg/results"
)

// Resumption is what `run --resume` continues from: the experiment exactly as
// recorded in the file's header, and the cells already in the file.
type Resumption struct {
	Exp     *Experiment
	ID      string
	Done    map[CellKey]bool
	Session int    // number of the session about to start
	Repair  string // what was done to the file's tail, if anything
	// Warnings about the file's contents (e.g. a partial cell).
	Warnings []string
	// Answered counts the answered attempts of each cell in Done: a
	// capacity search's decisions replay them (Runner.Answered).
	Answered map[CellKey]int
}

// LoadResume prepares path for appending (a torn last record is cut off) and
// reads what has been measured. adjust (may be nil) changes what a resume
// may change (where to run: the kubeconfig, the ingress, the endpoint)
// before the experiment is validated: a recorded kubeconfig that is gone
// must not refuse a resume that gives another.
func LoadResume(path string, adjust func(*Experiment) error) (*Resumption, error) {
	repair, err := results.RepairTail(path)
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %w", path, err)
	}
	set, err := results.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--resume: %w", err)
	}
	if len(set.Headers) == 0 {
		return nil, fmt.Errorf("--resume %s: no header record, so the experiment is unknown; resume only files written by `coldbench run`", path)
	}
	h := set.Headers[0]
	res := &Resumption{ID: h.ExperimentID, Done: map[CellKey]bool{}, Repair: repair, Warnings: set.Warnings}
	for _, other := range set.Headers {
		if other.ExperimentID != h.ExperimentID {
			return nil, fmt.Errorf("--resume %s: the file holds experiments %s and %s; resume works on one experiment's file", path, h.ExperimentID, other.ExperimentID)
		}
		res.Session = max(res.Session, other.Session+1)
	}
	raw, err := json.Marshal(h.Experiment)
	if err != nil {
		return nil, fmt.Errorf("--resume %s: header's experiment: %w", path, err)
	}
	if res.Exp, err = Decode(raw); err != nil {
		return nil, fmt.Errorf("--resume %s: header's experiment: %w", path, err)
	}
	if res.Exp.Spec.Density != nil {
		return nil, fmt.Errorf("--resume %s: the file records a density run, which cannot be resumed: its instances were removed when it stopped, so the next step would start on an empty node while the records say it met the density built before; start a new density run with another -o file", path)
	}
	// Sections may accept what older versions recorded and now refuse.
	for _, sec := range res.Exp.Spec.Sections {
		if f, ok := sec.(RecordFixer); ok {
			f.FixRecorded()
		}
	}
	// A header from before footprints were measured: the rest of the run
	// measures what its first part did, no footprint and no settle.
	if res.Exp.Spec.Footprint == nil {
		res.Exp.Spec.Footprint = &FootprintSpec{Off: true}
	}
	if adjust != nil {
		if err := adjust(res.Exp); err != nil {
			return nil, err
		}
	}
	// It was validated when first run (possibly with --force).
	if err := res.Exp.CompleteAndValidate(true); err != nil {
		return nil, fmt.Errorf("--resume %s: %w", path, err)
	}
	counts := map[CellKey]int{}
	res.Answered = map[CellKey]int{}
	for _, a := range set.Attempts {
		if a.ExperimentID == res.ID {
			k := CellKey{a.Runtime, a.Scale, a.Iteration}
			counts[k]++
			n := res.Answered[k] // a cell where none answered has 0, not no entry
			if a.OK {
				n++
			}
			res.Answered[k] = n
		}
	}
	for k, n := range counts {
		if n != k.Scale {
			// Cells are written in one write(2); this means an edited file.
			res.Warnings = append(res.Warnings, fmt.Sprintf("cell runtime=%s n=%d iteration=%d has %d of %d records; kept as is, not measured again", k.Runtime, k.Scale, k.Iteration, n, k.Scale))
		}
		res.Done[k] = true
	}
	return res, nil
}
