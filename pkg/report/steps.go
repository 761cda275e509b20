package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/coldbench/coldbench/pkg/stats"
)

// Marks in the steps table, explained below it when they appear.
const (
	mixedMark      = "†" // a MemAvailable drop over instances not all answered
	overGoalMark   = "!" // a harness figure over its goal
	processRSSMark = "+" // a peak RSS since the process started, not the step's
)

// stepTable is the compact second table of the text formats: per cell,
// its steps' untimed set-up and teardown, the harness's own use of the
// node, and the attempts that waited for room on a node. Records written
// before these figures have none, and then there is no table at all.
type stepTable struct {
	Title string // "steps" unless set
	Head  []string
	Rows  [][]string
	Notes []string
	Names int // leading columns that are names, not figures
}

// stepsTable builds it from rows (nil: no row has step figures or waits).
func stepsTable(rows []stats.Row, withPlatform bool) *stepTable {
	var anySteps, anyWaits, anyClock bool
	for _, r := range rows {
		anySteps = anySteps || r.Steps != nil
		anyWaits = anyWaits || r.Waited != nil
		anyClock = anyClock || r.Clock != nil
	}
	if !anySteps && !anyWaits && !anyClock {
		return nil
	}
	t := &stepTable{Head: []string{"RUNTIME", "N"}, Names: 1}
	if withPlatform {
		t.Head, t.Names = append([]string{"PLATFORM"}, t.Head...), 2
	}
	if anySteps {
		t.Head = append(t.Head, "STEPS", "SETUP s P50/MAX", "TEARDOWN s P50/MAX", "WALL s P50/MAX", "HARNESS CPU MAX", "HARNESS RSS MAX")
	}
	if anyWaits {
		t.Head = append(t.Head, "WAITED FOR A NODE (OK)", "WAIT s P50/MAX")
	}
	if anyClock {
		t.Head = append(t.Head, "CLOCK", "READ LAG ms P50/MAX")
	}
	var over, process bool
	var userNotes []string
	for _, r := range rows {
		if r.Steps == nil && r.Waited == nil && r.Clock == nil {
			continue
		}
		c := []string{r.Runtime, strconv.Itoa(r.Scale)}
		if withPlatform {
			c = append([]string{r.Platform}, c...)
		}
		if anySteps {
			cells, o, p := stepCells(r.Steps)
			c, over, process = append(c, cells...), over || o, process || p
		}
		if anyWaits {
			c = append(c, waitCells(r.Waited, r.Steps != nil)...)
		}
		if anyClock {
			c = append(c, clockCells(r.Clock)...)
			if r.Clock != nil {
				for _, n := range r.Clock.Notes {
					userNotes = append(userNotes, fmt.Sprintf("%s N=%d: %s", r.Runtime, r.Scale, n))
				}
			}
		}
		t.Rows = append(t.Rows, c)
	}
	if anySteps {
		t.Notes = append(t.Notes, fmt.Sprintf("steps: measured steps (N instances at once), each counted once; set-up and teardown are untimed; "+
			"harness CPU = coldbench's CPU time / (step wall × the node's cores), goal ≤ %g %%; harness RSS = its peak resident set, goal ≤ %d MiB",
			100*stats.HarnessCPUShareGoal, stats.HarnessRSSGoalBytes>>20))
	}
	if over {
		t.Notes = append(t.Notes, overGoalMark+" over its goal: the harness may have competed with the instances it measured")
	}
	if process {
		t.Notes = append(t.Notes, processRSSMark+" peak since the process started: this OS could not reset it at the step's start")
	}
	if anyClock {
		t.Notes = append(t.Notes, "clock: kernel = each attempt's first byte is the kernel's receive stamp of the reply's first segment, "+
			"and on Knative its start the kernel's transmit stamp of the request (SO_TIMESTAMPING; the node backend's start is its first CRI call); "+
			"user = coldbench's goroutines' own stamps, for the whole step; read lag = how much later than the kernel's stamp coldbench's goroutine read the first byte, "+
			"what a user-space stamp would have added (user_first_byte − first_byte in the records)")
		for _, n := range userNotes {
			t.Notes = append(t.Notes, "user-space stamps at "+n)
		}
	}
	if anyWaits {
		t.Notes = append(t.Notes, "waited for a node: measured attempts whose pod had to wait for room on a node (the scheduler's Insufficient cpu, Too many pods, …; "+
			"or refused by its node), in parentheses those that succeeded; the wait runs until the pod was scheduled, or the attempt's end")
	}
	return t
}

func (t *stepTable) title() string {
	if t.Title == "" {
		return "steps"
	}
	return t.Title
}

// seconds renders nanoseconds as seconds with 3 decimals: set-up, teardown
// and waits are seconds long.
func seconds(ns float64) string { return strconv.FormatFloat(ns/1e9, 'f', 3, 64) }

func medianMax(m stats.MedianMax) string { return seconds(m.Median) + "/" + seconds(m.Max) }

// stepCells are a row's step columns, and whether a figure was over its
// goal or a peak RSS was the process's.
func stepCells(s *stats.StepSummary) (cells []string, over, process bool) {
	if s == nil {
		return []string{"-", "-", "-", "-", "-", "-"}, false, false
	}
	cpu := "-" // no header said how many cores the node had
	if s.CPUShareSteps > 0 {
		cpu = strconv.FormatFloat(100*s.HarnessCPUShareMax, 'f', 2, 64) + "%"
		if s.HarnessCPUShareMax > stats.HarnessCPUShareGoal {
			cpu, over = cpu+overGoalMark, true
		}
	}
	rss := "-"
	if s.HarnessPeakRSSMax > 0 {
		rss = strconv.FormatFloat(float64(s.HarnessPeakRSSMax)/(1<<20), 'f', 1, 64) + " MiB"
		if s.HarnessPeakRSSMax > stats.HarnessRSSGoalBytes {
			rss, over = rss+overGoalMark, true
		}
		if s.HarnessPeakRSSScope == "process" {
			rss, process = rss+processRSSMark, true
		}
	}
	return []string{strconv.Itoa(s.Steps), medianMax(s.Setup), medianMax(s.Teardown), medianMax(s.Wall), cpu, rss}, over, process
}

// waitCells are a row's wait columns; without waits, a cell with step
// figures (recorded since waits are) had none, one without is unknown.
func waitCells(w *stats.WaitSummary, recorded bool) []string {
	switch {
	case w == nil && recorded:
		return []string{"0", "-"}
	case w == nil:
		return []string{"-", "-"}
	}
	return []string{fmt.Sprintf("%d (%d)", w.Waited, w.Answered), medianMax(w.Wait)}
}

// clockCells are a row's CLOCK and READ LAG cells.
func clockCells(c *stats.ClockSummary) []string {
	if c == nil {
		return []string{"-", "-"}
	}
	clock := "kernel"
	switch {
	case c.Kernel == 0:
		clock = "user"
	case c.User > 0:
		clock = fmt.Sprintf("kernel %d, user %d", c.Kernel, c.User)
	}
	lag := "-"
	if c.LagN > 0 {
		lag = strconv.FormatFloat(c.ReadLag.Median/1e6, 'f', 3, 64) + "/" + strconv.FormatFloat(c.ReadLag.Max/1e6, 'f', 3, 64)
	}
	return []string{clock, lag}
}

// writeText writes the table (tab-aligned) and its notes after the main
// table of the text format.
func (t *stepTable) writeText(ew *errWriter) error {
	ew.printf("\n%s\n", t.title())
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Head, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ew.printf("\n")
	for _, l := range t.Notes {
		ew.printf("%s\n", l)
	}
	return ew.err
}

// writeMarkdown writes it as a GitHub table, names left, figures right.
func (t *stepTable) writeMarkdown(ew *errWriter) {
	ew.printf("\n**%s**\n\n|", t.title())
	for _, h := range t.Head {
		ew.printf(" %s |", mdEscape(h))
	}
	ew.printf("\n|")
	for _, h := range t.Head {
		if h == "RUNTIME" || h == "PLATFORM" {
			ew.printf(" --- |")
		} else {
			ew.printf(" ---: |")
		}
	}
	ew.printf("\n")
	for _, r := range t.Rows {
		ew.printf("|")
		for _, c := range r {
			ew.printf(" %s |", mdEscape(c))
		}
		ew.printf("\n")
	}
	ew.printf("\n")
	for _, l := range t.Notes {
		ew.printf("%s  \n", mdEscape(l))
	}
}

// footprintTable is the table of what each cell's instances cost their
// node (nil: no row has footprint records). Every figure is the median
// over the successful measured attempts with that figure, with its 95 %
// CI where there are enough of them; "not measured" where none has it.
func footprintTable(rows []stats.Row, withPlatform bool) *stepTable {
	recorded := false
	for _, r := range rows {
		recorded = recorded || r.Footprint != nil
	}
	if !recorded {
		return nil
	}
	t := &stepTable{Title: "footprint", Head: []string{"RUNTIME", "N"}, Names: 1}
	if withPlatform {
		t.Head, t.Names = append([]string{"PLATFORM"}, t.Head...), 2
	}
	t.Head = append(t.Head, "MEASURED", "PSS MiB", "PSS ANON+SHMEM MiB", "CGROUP MiB", "WORKING SET MiB", "MEMAVAILABLE/N MiB", "ANON+SHMEM VS MEMAVAILABLE/N",
		"CPU ms TO FIRST BYTE", "IDLE CPU millicores")
	// The kubelet's view (knative) gets a column where any row has it.
	kubelet := slices.ContainsFunc(rows, func(r stats.Row) bool { return r.Footprint != nil && r.Footprint.KubeletWorkingSet.N > 0 })
	if kubelet {
		t.Head = append(t.Head, "KUBELET WORKING SET MiB")
	}
	var sources, missing []string
	mixed, partial, sampled := false, false, false
	for _, r := range rows {
		f := r.Footprint
		if f == nil {
			continue
		}
		c := []string{r.Runtime, strconv.Itoa(r.Scale)}
		if withPlatform {
			c = append([]string{r.Platform}, c...)
		}
		// A figure measured in fewer of the attempts than the row's
		// footprint records says in how many.
		cell := func(e stats.Estimate, unit float64) string {
			v := estimateCell(e, unit, 1)
			if e.N > 0 && e.N < f.Attempts {
				v, partial = fmt.Sprintf("%s (n=%d)", v, e.N), true
			}
			return v
		}
		agree := "-"
		if d := stats.Agreement(f.PSSAnonShmem, f.MemAvailablePerInstance); !math.IsNaN(d) {
			agree = strconv.FormatFloat(100*d, 'f', 0, 64) + "%"
			if f.MixedSteps > 0 {
				agree, mixed = agree+mixedMark, true
			}
		}
		memAvail := estimateCell(f.MemAvailablePerInstance, 1<<20, 1) // per step, not per attempt
		cpu := cell(f.CPUToFirstByte, 1e6)
		if e := f.CPUToFirstByteError; e.N > 0 {
			cpu, sampled = fmt.Sprintf("%s ±%.1f", cpu, e.Median/1e6), true
		}
		c = append(c, fmt.Sprintf("%d/%d", f.Attempts, r.Successes), cell(f.PSS, 1<<20), cell(f.PSSAnonShmem, 1<<20), cell(f.CgroupUsage, 1<<20),
			cell(f.WorkingSet, 1<<20), memAvail, agree, cpu, cell(f.IdleCores, 1e-3))
		if kubelet {
			c = append(c, cell(f.KubeletWorkingSet, 1<<20))
		}
		t.Rows = append(t.Rows, c)
		for _, s := range f.Sources {
			if !slices.Contains(sources, s) {
				sources = append(sources, s)
			}
		}
		if f.Missing != "" && len(missing) < 3 {
			missing = append(missing, fmt.Sprintf("%s N=%d: %s", r.Runtime, r.Scale, f.Missing))
		}
	}
	t.Notes = append(t.Notes,
		"footprint: medians over the successful measured attempts, [95 % CI of the median] where there are enough; measured = attempts with a footprint record / successes. "+
			"PSS sums the instance's processes (shim, runtime helpers, pause, function) after the settle; cgroup and working set are its pod cgroup's (the shim is outside it); "+
			"MemAvailable/N is the node's drop in available memory over the step divided by the instances running, once per step; "+
			"PSS anon+shmem is the part of PSS no file backs: a drop of MemAvailable does not show file pages (binaries' text), which the page cache can give back; "+
			"anon+shmem vs MemAvailable/N = |difference| / the larger; CPU to first byte counts the pod cgroup and the shim with the commands it reaped; idle CPU is over the settle's second half (from the kubelet's Summary API: between two of its readings after the replies)"+
			kubeletNote(kubelet),
		"sources: "+strings.Join(sources, ", "))
	if sampled {
		t.Notes = append(t.Notes, "CPU to first byte ±e: interpolated between the node agent's samples before and after each first byte; e is the median of the attempts' bounds (the CPU at the first byte lay within ±their bound)")
	}
	if partial {
		t.Notes = append(t.Notes, "(n=k): the figure was measured in k of the row's attempts with a footprint record")
	}
	if mixed {
		t.Notes = append(t.Notes, mixedMark+" in some steps not every running instance had answered: those may still have been starting, and the node's drop is not only idle instances'")
	}
	for _, m := range missing {
		t.Notes = append(t.Notes, "not measured in some attempts: "+m)
	}
	return t
}

// estimateCell renders e in units of unit ("not measured" without values).
func estimateCell(e stats.Estimate, unit float64, decimals int) string {
	if e.N == 0 {
		return "not measured"
	}
	f := func(v float64) string { return strconv.FormatFloat(v/unit, 'f', decimals, 64) }
	if !e.CI {
		return f(e.Median)
	}
	return f(e.Median) + " [" + f(e.Lo) + ", " + f(e.Hi) + "]"
}

// kubeletNote explains the kubelet's column where there is one.
func kubeletNote(shown bool) string {
	if !shown {
		return ""
	}
	return "; kubelet working set: the pod cgroup's as the kubelet's Summary API gave it beside the node agent's (cAdvisor's latest reading, every 10 s or so: (n=k) where it had read the pod)"
}
