package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/coldbench/coldbench/pkg/bench"
)

// closeRun closes the run's session (what is left of the run goes) and
// returns run's error. A clean-up that fails is never silent: the message
// names what the experiment left and the command that removes it, and the
// run fails (ExitFailure), unless it fails already with a status of its own
// (an interrupt's 130 stays 130; the message is printed all the same).
func closeRun(r *bench.Runner, plat bench.Platform, id string, stderr io.Writer, runErr error) error {
	cerr := r.Close()
	if cerr == nil {
		return runErr
	}
	msg := leftoverReport(plat, id, cerr)
	if runErr == nil {
		return &exitError{code: ExitFailure, err: errors.New(msg)}
	}
	fmt.Fprintln(stderr, "coldbench:", msg)
	return runErr
}

// leftoverReport says that the clean-up after the run failed (cerr), what
// the experiment left (when the platform can list it) and how to remove it.
func leftoverReport(plat bench.Platform, id string, cerr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the clean-up after the run failed: %v\n", cerr)
	flags := []string{"--platform", plat.Name()}
	if inv, ok := plat.(bench.Inventory); ok {
		flags = inv.CleanFlags()
		// Its own context: the run's may be canceled (Ctrl-C).
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		left, err := inv.Leftovers(ctx, id)
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "what experiment %s left could not be listed: %v\n", id, err)
		} else {
			fmt.Fprintf(&b, "left by experiment %s:%s\n", id, describeLeftovers(left))
		}
	}
	fmt.Fprintf(&b, "remove it with: coldbench clean %s --experiment %s", shellJoin(flags), id)
	return b.String()
}

// describeLeftovers is " 212 ksvc (a, b, c, …), 212 pod (…)", or " nothing".
func describeLeftovers(left []bench.Leftover) string {
	var parts []string
	for _, l := range left {
		if l.Count == 0 {
			continue
		}
		p := fmt.Sprintf("%d %s", l.Count, l.Kind)
		if len(l.Names) > 0 {
			names := strings.Join(l.Names, ", ")
			if l.Count > len(l.Names) {
				names += ", …"
			}
			p += " (" + names + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return " nothing now"
	}
	return " " + strings.Join(parts, ", ")
}

// shellSafe matches arguments a shell takes as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:=@,+-]+$`)

// shellJoin joins args for a command line to copy, quoting those a shell
// would split or expand.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if !shellSafe.MatchString(a) {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
