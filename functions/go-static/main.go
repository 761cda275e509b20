// Command go-static is the Go cold-start probe function: a static HTTP server
// that reports when its process started running user code.
//
// Contract (shared with functions/c-static):
//   - listens on 0.0.0.0:$PORT (IPv4, default 8080);
//   - answers every path and method with 200 and the fixed body below
//     (HEAD without body) plus X-Coldbench-Process-Start: <unix nanoseconds>;
//   - exits 0 promptly on SIGTERM or SIGINT.
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/coldbench/coldbench/functions/go-static/internal/procstart"
)

const (
	body        = "coldbench: hello from go-static\n"
	startHeader = "X-Coldbench-Process-Start"
)

// processStart comes from a dependency-free package so it is taken before
// net/http and friends initialise; see package procstart.
var processStart = procstart.Time

func handler(startNanos string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(startHeader, startNanos)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
	})
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}

	// Registered before listening so a SIGTERM racing startup still exits 0.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		// Nothing to drain or flush; a graceful Shutdown would only delay exit.
		os.Exit(0)
	}()

	// tcp4 matches the C function's AF_INET socket so both behave alike.
	ln, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-static: listen: %v\n", err)
		os.Exit(1)
	}
	start := strconv.FormatInt(processStart.UnixNano(), 10)
	fmt.Fprintf(os.Stderr, "go-static: listening on %s (process start %s)\n", ln.Addr(), start)

	srv := &http.Server{Handler: handler(start), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "go-static: serve: %v\n", err)
		os.Exit(1)
	}
}
