package rtevents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"google.golang.org/grpc"
)

// Sink receives a subscription's events and the errors of those it could
// not decode, then, once, why they ended. *Window is one.
type Sink interface {
	Add(Event)
	Undecodable(error)
	Lose(error)
}

// ErrClosed is the loss reason of a subscription its owner closed.
var ErrClosed = errors.New("event subscription closed")

// Subscription is one stream of containerd's events into a Sink.
type Subscription struct {
	cancel    context.CancelCauseFunc
	done      chan struct{}
	namespace string
	kinds     []Kind
}

// Subscribe streams the events of the kinds (none: all of Kinds) in
// containerd's namespace ("": every namespace) from containerd's events
// service on conn into sink, until Close or ctx's end. Whatever ends the
// stream (containerd's restart, a closed connection, a filter it refuses)
// is handed to sink.Lose: missing events are never silent. An event of a
// subscribed kind and namespace that cannot be decoded is logged and handed
// to sink.Undecodable.
//
// containerd sends no reply before the first event, so a subscription
// that containerd refuses is only known when the stream ends, through
// sink.Lose; the error returned is only a client-side failure to start.
func Subscribe(ctx context.Context, conn grpc.ClientConnInterface, namespace string, sink Sink, log *slog.Logger, kinds ...Kind) (*Subscription, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sctx, cancel := context.WithCancelCause(ctx)
	stream, err := eventsapi.NewEventsClient(conn).Subscribe(sctx, &eventsapi.SubscribeRequest{Filters: Filters(namespace, kinds...)})
	if err != nil {
		cancel(nil)
		err = fmt.Errorf("subscribing to containerd's events: %w", err)
		sink.Lose(err)
		return nil, err
	}
	s := &Subscription{cancel: cancel, done: make(chan struct{}), namespace: namespace, kinds: kinds}
	go s.run(sctx, stream, sink, log)
	return s, nil
}

// wants checks what containerd's filters already selected: a containerd
// that ignored them (or a newer one that filters differently) must not
// put other namespaces' or other kinds' events in the Sink.
func (s *Subscription) wants(namespace string, kind Kind) bool {
	if s.namespace != "" && namespace != s.namespace {
		return false
	}
	return len(s.kinds) == 0 || slices.Contains(s.kinds, kind)
}

// run receives until the stream ends, then tells sink why.
func (s *Subscription) run(ctx context.Context, stream eventsapi.Events_SubscribeClient, sink Sink, log *slog.Logger) {
	defer close(s.done)
	for {
		env, err := stream.Recv()
		if err != nil {
			sink.Lose(lossReason(ctx, err))
			if !errors.Is(context.Cause(ctx), ErrClosed) {
				log.Warn("containerd's event stream ended: no more events from it", "err", err)
			}
			return
		}
		ev, ok, err := Decode(env)
		if err != nil {
			log.Warn("skipping a containerd event that cannot be decoded", "topic", env.GetTopic(), "err", err)
			if s.wants(env.GetNamespace(), kindOfTopic[env.GetTopic()]) {
				sink.Undecodable(err)
			}
			continue
		}
		if ok && s.wants(ev.Namespace, ev.Kind) {
			sink.Add(ev)
		}
	}
}

// lossReason says why the stream ended: closed by its owner, the owner's
// context ending, or containerd's side.
func lossReason(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("containerd event subscription ended with its context: %w", cause)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("containerd ended the event stream")
	}
	return fmt.Errorf("containerd event stream lost: %w", err)
}

// Close ends the subscription and waits until its Sink has been told
// (ErrClosed, unless the stream was lost before).
func (s *Subscription) Close() {
	s.cancel(ErrClosed)
	<-s.done
}

// Done is closed once the stream has ended and the Sink has been told why.
func (s *Subscription) Done() <-chan struct{} { return s.done }
