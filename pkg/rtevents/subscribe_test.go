package rtevents

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// eventsServer is containerd's events service as a subscriber sees it:
// each Subscribe reports its filters, then sends what the test publishes
// until the test ends the stream (with end's error; nil: a clean end).
type eventsServer struct {
	eventsapi.UnimplementedEventsServer
	filters chan []string
	publish chan *types.Envelope
	end     chan error
}

func (s *eventsServer) Subscribe(req *eventsapi.SubscribeRequest, stream eventsapi.Events_SubscribeServer) error {
	s.filters <- req.GetFilters()
	for {
		select {
		case env := <-s.publish:
			if err := stream.Send(env); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// serve starts an events server in-process (bufconn) and returns it and a
// client connection to it; both end with the test.
func serve(t *testing.T) (*eventsServer, *grpc.ClientConn) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	es := &eventsServer{filters: make(chan []string, 1), publish: make(chan *types.Envelope), end: make(chan error)}
	eventsapi.RegisterEventsServer(srv, es)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///containerd",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return es, conn
}

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// warnings is a log handler that writes to the test's output and counts
// the records at Warn or above.
type warnings struct {
	slog.Handler
	n *atomic.Int32
}

func newWarnings(t *testing.T) warnings {
	return warnings{Handler: slog.NewTextHandler(t.Output(), nil), n: new(atomic.Int32)}
}

func (w warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return w.Handler.Handle(ctx, r)
}

// subscribe subscribes w to es for the pod kinds in k8s.io and waits until
// the server has the subscription.
func subscribe(t *testing.T, es *eventsServer, conn *grpc.ClientConn, w *Window) *Subscription {
	t.Helper()
	return subscribeLog(t, es, conn, w, testLog(t))
}

// subscribeLog is subscribe logging to log.
func subscribeLog(t *testing.T, es *eventsServer, conn *grpc.ClientConn, w *Window, log *slog.Logger) *Subscription {
	t.Helper()
	sub, err := Subscribe(context.Background(), conn, "k8s.io", w, log, PodKinds...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	select {
	case f := <-es.filters:
		if want := Filters("k8s.io", PodKinds...); !slices.Equal(f, want) {
			t.Errorf("server got filters %q, want %q", f, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription never reached the server")
	}
	return sub
}

// The captured envelopes of a runc cold start, sent by a server, reach the
// Window decoded: the pod's four moments at the envelopes' timestamps. The
// kinds and namespaces not asked for (containerd filters them; a server
// that did not) and an undecodable event are left out, and the stream
// goes on after them; the undecodable one, of a kind and namespace asked
// for, is counted in the Window (not one of another namespace).
func TestSubscribeDeliversThePod(t *testing.T) {
	es, conn := serve(t)
	w := NewWindow(0, 0, nil)
	subscribe(t, es, conn, w)
	envs := captured(t, "runc")
	sandbox, ctr := decodeAll(t, envs[1:2])[0].ContainerID, decodeAll(t, envs[4:5])[0].ContainerID
	foreign := envelope(t, "/tasks/start", "moby", time.Now(), &eventtypes.TaskStart{ContainerID: sandbox, Pid: 1})
	broken := envelope(t, "/tasks/start", "k8s.io", time.Now(), &eventtypes.TaskStart{ContainerID: ctr})
	broken.Event.Value = []byte{0xff}
	brokenForeign := envelope(t, "/tasks/start", "moby", time.Now(), &eventtypes.TaskStart{ContainerID: ctr})
	brokenForeign.Event.Value = []byte{0xff}
	es.publish <- foreign
	es.publish <- brokenForeign
	es.publish <- broken
	for _, env := range envs {
		es.publish <- env
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := w.Wait(ctx, time.Time{}, PodKeys(sandbox, ctr)...)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := []time.Time{envs[1].GetTimestamp().AsTime(), envs[3].GetTimestamp().AsTime(), envs[4].GetTimestamp().AsTime(), envs[6].GetTimestamp().AsTime()}
	for i, m := range Moments {
		if ev := got[m.Key(sandbox, ctr)]; !ev.Time.Equal(wantAt[i]) {
			t.Errorf("%s at %v, want %v", m, ev.Time, wantAt[i])
		}
	}
	if w.Len() != 4 {
		t.Errorf("window holds %d events, want the 4 of the pod kinds in k8s.io", w.Len())
	}
	if w.Err() != nil {
		t.Errorf("Err = %v while the stream runs", w.Err())
	}
	_, err = w.Wait(canceled(), time.Time{}, Key{TaskStart, "never"})
	if err == nil || !strings.Contains(err.Error(), "; 1 event could not be decoded: decoding event /tasks/start: ") {
		t.Errorf("a missing event: %v, want it to say 1 event could not be decoded and why", err)
	}
}

// containerd ending the stream (restart, refused filter) is a loss with
// containerd's reason, handed to waiters at once.
func TestSubscribeStreamLost(t *testing.T) {
	for name, c := range map[string]struct {
		end  error
		want string
	}{
		"error": {status.Error(codes.InvalidArgument, "failed parsing subscription filters"), "containerd event stream lost: rpc error: code = InvalidArgument desc = failed parsing subscription filters"},
		"end":   {nil, "containerd ended the event stream"},
	} {
		t.Run(name, func(t *testing.T) {
			es, conn := serve(t)
			w := NewWindow(0, 0, nil)
			warned := newWarnings(t)
			sub := subscribeLog(t, es, conn, w, slog.New(warned))
			es.end <- c.end
			select {
			case <-sub.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the subscription did not end with its stream")
			}
			if warned.n.Load() != 1 {
				t.Errorf("%d warnings logged for the lost stream, want 1", warned.n.Load())
			}
			if w.Err() == nil || w.Err().Error() != c.want {
				t.Errorf("Err = %v, want %q", w.Err(), c.want)
			}
			_, err := w.Wait(context.Background(), time.Time{}, PodKeys("sb", "ctr")...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Wait after the loss: %v", err)
			}
		})
	}
}

// Close ends the subscription: ErrClosed, and no warning-worthy loss.
func TestSubscribeClose(t *testing.T) {
	es, conn := serve(t)
	w := NewWindow(0, 0, nil)
	warned := newWarnings(t)
	sub := subscribeLog(t, es, conn, w, slog.New(warned))
	sub.Close()
	if !errors.Is(w.Err(), ErrClosed) {
		t.Errorf("Err = %v after Close, want ErrClosed", w.Err())
	}
	if warned.n.Load() != 0 {
		t.Errorf("Close logged %d warnings, want none", warned.n.Load())
	}
	sub.Close() // twice is harmless
}

// A containerd that is not there: Subscribe fails, and the Sink knows why.
func TestSubscribeNoContainerd(t *testing.T) {
	conn, err := grpc.NewClient("unix://"+filepath.Join(t.TempDir(), "containerd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := NewWindow(0, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if sub, err := Subscribe(ctx, conn, "k8s.io", w, nil); err == nil {
		sub.Close()
		t.Fatal("subscribed to a socket that does not exist")
	}
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "subscribing to containerd's events") {
		t.Errorf("Err = %v", err)
	}
}
