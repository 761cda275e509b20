package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/coldbench/coldbench/pkg/rtevents"
)

// shutdownGrace bounds how long a stopping agent waits for the requests
// in flight (the DaemonSet's terminationGracePeriodSeconds is longer).
const shutdownGrace = 5 * time.Second

// Main is the coldbench-agent command: it parses args, serves until
// SIGTERM or SIGINT (or ctx's end), and returns the exit code: 0 after a
// graceful stop, 1 if it could not serve, 2 for bad flags.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("coldbench-agent stopped", "err", err)
		return 1
	}
	log.Info("coldbench-agent stopped")
	return 0
}

// options are the command's flags.
type options struct {
	socket, ip string
	port       int
	verbose    bool
	cfg        Config
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("coldbench-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "containerd-socket", DefaultSocket, "containerd's socket (its events and containers services are read, nothing else)")
	fs.StringVar(&o.cfg.Namespace, "namespace", DefaultNamespace, "containerd namespace of the kubelet's pods (CRI's)")
	fs.StringVar(&o.ip, "ip", "", "address to listen on: the pod's IP (default: every address of the pod's own network namespace)")
	fs.IntVar(&o.port, "port", DefaultPort, "port to serve /v1/events and /healthz on")
	fs.IntVar(&o.cfg.MaxEvents, "max-events", rtevents.DefaultMax, "most events held (the pods and labels remembered are bounded alike)")
	fs.DurationVar(&o.cfg.MaxAge, "max-age", rtevents.DefaultMaxAge, "events older than this (since they arrived) are evicted")
	fs.StringVar(&o.cfg.HostRoot, "host-root", "/", "where the node's /proc and /sys/fs/cgroup are mounted (read for /v1/footprint)")
	fs.DurationVar(&o.cfg.CPUPeriod, "cpu-period", DefaultCPUPeriod, "shortest pause between two samples of a pod's CPU while coldbench has armed the sampling (/v1/cpu)")
	fs.Float64Var(&o.cfg.CPUDuty, "cpu-duty", DefaultCPUDuty, "largest share of one core the CPU sampling may use (a sweep over the pods is followed by a pause of at least (1/duty - 1) times the CPU the agent used during it)")
	fs.DurationVar(&o.cfg.CPUSampleFor, "cpu-sample-for", DefaultCPUSampleFor, "how long a pod's CPU is sampled from its sandbox's creation")
	fs.IntVar(&o.cfg.CPUMaxSamples, "cpu-max-samples", DefaultCPUMaxSamples, "most samples kept of one pod")
	fs.BoolVar(&o.verbose, "v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var bad error
	switch {
	case fs.NArg() > 0:
		bad = fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.port < 0 || o.port > 65535:
		bad = fmt.Errorf("-port %d: not a TCP port", o.port)
	case o.cfg.MaxEvents <= 0 || o.cfg.MaxAge <= 0:
		bad = errors.New("-max-events and -max-age must be positive")
	case o.cfg.CPUPeriod <= 0 || o.cfg.CPUSampleFor <= 0 || o.cfg.CPUMaxSamples <= 0:
		bad = errors.New("-cpu-period, -cpu-sample-for and -cpu-max-samples must be positive")
	case o.cfg.CPUDuty <= 0 || o.cfg.CPUDuty > 1:
		bad = fmt.Errorf("-cpu-duty %v: want a share of one core, in (0, 1]", o.cfg.CPUDuty)
	case o.socket == "":
		bad = errors.New("-containerd-socket is empty")
	}
	if bad != nil {
		fmt.Fprintln(stderr, "coldbench-agent:", bad)
		fs.Usage()
	}
	return o, bad
}

// run connects to containerd, listens and serves until ctx ends.
func run(ctx context.Context, o options, log *slog.Logger) error {
	conn, err := Dial(o.socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	addr := net.JoinHostPort(o.ip, strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	log.Info("coldbench-agent serving", "addr", ln.Addr().String(), "containerd", o.socket, "namespace", o.cfg.Namespace,
		"max_events", o.cfg.MaxEvents, "max_age", o.cfg.MaxAge)
	o.cfg.Log = log
	return Serve(ctx, conn, ln, o.cfg)
}

// Dial makes a connection to containerd's socket (lazily: nothing is sent
// until the first call). After containerd restarts, gRPC reconnects with a
// back-off capped at 5 s rather than its default 2 minutes, so the
// subscription comes back soon after containerd does.
func Dial(socket string) (*grpc.ClientConn, error) {
	bo := backoff.DefaultConfig
	bo.MaxDelay = 5 * time.Second
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("containerd socket %s: %w", socket, err)
	}
	return conn, nil
}

// Serve runs an Agent on conn and serves it on ln until ctx ends; then it
// stops taking requests, lets those in flight finish (up to
// shutdownGrace), ends the subscription, and returns once every goroutine
// it started has. An error is the server's own failure.
func Serve(ctx context.Context, conn grpc.ClientConnInterface, ln net.Listener, cfg Config) error {
	a := New(conn, cfg)
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(subCtx) })
	wg.Go(func() { a.cpu.run(subCtx) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
		// The subscription keeps running while the last answers go out.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		if serr := srv.Shutdown(sctx); serr != nil {
			a.log.Warn("requests still in flight at shutdown were cut", "err", serr)
			srv.Close()
		}
		cancel()
		<-served
	case err = <-served:
		err = fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	stopSub()
	wg.Wait()
	return err
}
