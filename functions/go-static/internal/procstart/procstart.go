// Package procstart records the process start time as early as Go allows.
//
// Package variables are initialised before any init function or main, and
// (since Go 1.21) ready packages initialise in import-path order. This package
// depends only on time, so it runs right after the runtime and time packages,
// ahead of the ~60 packages net/http pulls in. Its variable initialiser is the
// Go runtime's first user-code moment; only exec and runtime bootstrap precede it.
package procstart

import "time"

// Time is when this process started running user code.
var Time = time.Now()
