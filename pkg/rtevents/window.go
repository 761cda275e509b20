package rtevents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Window keeps the latest events, bounded by count and by age, for callers
// that look for the events of given IDs after the fact: an event reaches
// the subscriber asynchronously, after the call that caused it returned,
// so a caller waits briefly for it, outside anything it times. The Window
// also holds the subscription's state: once the stream is lost, waiters
// learn why at once instead of waiting for events that can no longer come.
// It is safe for concurrent use.
type Window struct {
	max    int
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	evs     []held           // in arrival order, oldest first
	index   map[Key]*indexed // the first event of each key still held
	seq     uint64           // arrivals so far
	dropped int              // events evicted by the bounds so far
	evicted time.Time        // arrival of the newest event evicted (zero: none)
	lost    error
	// undecodable counts the events the subscription could not decode;
	// the latest's error and arrival say why and whether a wait cares.
	undecodable     int
	undecodableErr  error
	undecodableTime time.Time
	// waiters are the wake channels of the Waits for each key: an event
	// wakes only those waiting for it (at 500 instances waking every
	// waiter at every event would be 500² wake-ups), a loss all of them.
	waiters map[Key]map[chan struct{}]struct{}
}

type held struct {
	ev      Event
	seq     uint64
	arrived time.Time // by the Window's clock, for the age bound
}

// indexed is the first held event of a key and how many of the key are held.
type indexed struct {
	held
	count int
}

// Default bounds of a Window. DefaultMax holds the events of about eight
// steps of 500 instances in a few MB: with PodKinds, the node backend's
// filter, a pod brings four (/containers/create and /tasks/start of its
// sandbox and of its container). DefaultMaxAge is far beyond the wait
// after an attempt's reply, which is all a caller needs.
const (
	DefaultMax    = 16384
	DefaultMaxAge = 10 * time.Minute
)

// NewWindow keeps at most max events (the oldest go first) and none that
// arrived more than maxAge ago by now; 0 takes the defaults, now nil takes
// time.Now (tests give a fake clock). Age is counted from arrival, not from
// the event's timestamp, so a clock difference with containerd cannot evict
// events early.
func NewWindow(max int, maxAge time.Duration, now func() time.Time) *Window {
	if max <= 0 {
		max = DefaultMax
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if now == nil {
		now = time.Now
	}
	return &Window{max: max, maxAge: maxAge, now: now, index: map[Key]*indexed{}, waiters: map[Key]map[chan struct{}]struct{}{}}
}

// Add keeps ev (a Sink's method: the subscription calls it).
func (w *Window) Add(ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	h := held{ev: ev, seq: w.seq, arrived: w.now()}
	w.evs = append(w.evs, h)
	if ix, ok := w.index[ev.Key()]; ok {
		ix.count++
	} else {
		w.index[ev.Key()] = &indexed{held: h, count: 1}
	}
	w.prune()
	for ch := range w.waiters[ev.Key()] {
		wake(ch)
	}
}

// Undecodable records an event that could not be decoded (a Sink's
// method): a wait missing an event says so, since a changed payload type
// would otherwise show only as events that never came.
func (w *Window) Undecodable(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.undecodable++
	w.undecodableErr, w.undecodableTime = err, w.now()
}

// Lose records that no more events will come, and why (a Sink's method).
// The first reason stays: later ones (a Close after a loss) add nothing.
func (w *Window) Lose(err error) {
	if err == nil {
		err = errors.New("event stream ended")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost == nil {
		w.lost = err
		for _, chs := range w.waiters {
			for ch := range chs {
				wake(ch)
			}
		}
	}
}

// Err is nil while events may still come, else why they cannot.
func (w *Window) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// Len is how many events the Window holds now.
func (w *Window) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune()
	return len(w.evs)
}

// Dropped is how many events the bounds have evicted so far.
func (w *Window) Dropped() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune()
	return w.dropped
}

// Evicted is how many events the bounds have evicted so far (Dropped) and
// when the newest of them had arrived, by the Window's clock (zero: none),
// read together: every event that arrived after that moment is still
// held, so a reader that cannot Wait (the node agent answering over HTTP)
// can still tell whether a missing event may have been evicted.
func (w *Window) Evicted() (n int, newestArrival time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune()
	return w.dropped, w.evicted
}

// Get returns, for each key, the first event of it the Window holds;
// keys without one are absent. It does not wait.
func (w *Window) Get(keys ...Key) map[Key]Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune()
	found, _ := w.find(keys)
	return found
}

// Wait returns when the Window holds an event of every key (nil error),
// or when ctx ends or the stream is lost first: then with the events of
// the keys it has and a *MissingError naming the others and why. since is
// when the keys' events could first have arrived (e.g. the start of what
// causes them), by the Window's clock: only evictions of events that
// arrived at or after it can explain a missing one (zero: any can), and
// only undecodable events that did.
func (w *Window) Wait(ctx context.Context, since time.Time, keys ...Key) (map[Key]Event, error) {
	var woken chan struct{} // registered by the first look that misses a key, under its lock: no event falls between
	defer func() {
		if woken != nil {
			w.mu.Lock()
			w.unlisten(keys, woken)
			w.mu.Unlock()
		}
	}()
	for {
		w.mu.Lock()
		w.prune()
		found, missing := w.find(keys)
		lost, why := w.lost, w.explain(since)
		if woken == nil && len(missing) > 0 && lost == nil {
			woken = make(chan struct{}, 1)
			w.listen(keys, woken)
		}
		w.mu.Unlock()
		switch {
		case len(missing) == 0:
			return found, nil
		case lost != nil:
			why.Missing, why.Err = missing, lost
			return found, &why
		}
		select {
		case <-ctx.Done():
			why.Missing, why.Err = missing, context.Cause(ctx)
			return found, &why
		case <-woken:
		}
	}
}

// explain is what may explain a missing event of a wait since since:
// evictions and undecodable events, if the latest of each arrived since.
func (w *Window) explain(since time.Time) MissingError {
	why := MissingError{Evicted: !w.evicted.IsZero() && !w.evicted.Before(since)}
	if w.undecodable > 0 && !w.undecodableTime.Before(since) {
		why.Undecodable, why.UndecodableErr = w.undecodable, w.undecodableErr
	}
	return why
}

// find splits keys into those with an event held and those without.
func (w *Window) find(keys []Key) (map[Key]Event, []Key) {
	found := make(map[Key]Event, len(keys))
	var missing []Key
	for _, k := range keys {
		if ix, ok := w.index[k]; ok {
			found[k] = ix.ev
		} else {
			missing = append(missing, k)
		}
	}
	return found, missing
}

// prune evicts what is over the bounds, oldest first.
func (w *Window) prune() {
	cut := 0
	if over := len(w.evs) - w.max; over > 0 {
		cut = over
	}
	old := w.now().Add(-w.maxAge)
	for cut < len(w.evs) && w.evs[cut].arrived.Before(old) {
		cut++
	}
	if cut == 0 {
		return
	}
	for _, h := range w.evs[:cut] {
		w.unindex(h)
	}
	w.evicted = w.evs[cut-1].arrived // the newest evicted: arrival order
	w.evs = w.evs[cut:]
	w.dropped += cut
}

// unindex forgets h, an event being evicted. Only when a key repeats (it
// should not: containerd IDs are unique) is the next one looked for.
func (w *Window) unindex(h held) {
	k := h.ev.Key()
	ix := w.index[k]
	ix.count--
	if ix.count == 0 {
		delete(w.index, k)
		return
	}
	if ix.seq != h.seq {
		return // a later one of the key is evicted before the first: cannot happen, the order is arrival's
	}
	for _, next := range w.evs {
		if next.seq > h.seq && next.ev.Key() == k {
			ix.held = next
			return
		}
	}
}

// listen registers ch to be woken by an event of any of keys. All of
// them, not only the missing ones: a key held may be evicted and come
// again, and one already held will not wake anyone.
func (w *Window) listen(keys []Key, ch chan struct{}) {
	for _, k := range keys {
		chs := w.waiters[k]
		if chs == nil {
			chs = map[chan struct{}]struct{}{}
			w.waiters[k] = chs
		}
		chs[ch] = struct{}{}
	}
}

// unlisten undoes listen.
func (w *Window) unlisten(keys []Key, ch chan struct{}) {
	for _, k := range keys {
		delete(w.waiters[k], ch)
		if len(w.waiters[k]) == 0 {
			delete(w.waiters, k)
		}
	}
}

// wake tells a waiter to look again; one pending wake-up is enough (ch
// has room for one), so it never blocks.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// MissingError is a Wait that ended without an event of every key.
type MissingError struct {
	Missing []Key
	// Err is why the wait ended: the context's cause (e.g.
	// context.DeadlineExceeded) or the stream's loss (Window.Err).
	Err error
	// Evicted: the Window's bounds had evicted events that arrived at or
	// after the wait's since, so a missing event may have come and gone.
	// Older evictions are not reported: they cannot explain it.
	Evicted bool
	// Undecodable is how many events the subscription had failed to
	// decode (a missing one may be among them) and UndecodableErr the
	// latest's error; 0 and nil unless the latest arrived at or after
	// the wait's since.
	Undecodable    int
	UndecodableErr error
}

func (e *MissingError) Error() string {
	names := make([]string, len(e.Missing))
	for i, k := range e.Missing {
		names[i] = k.String()
	}
	s := "no " + strings.Join(names, ", ") + ": " + e.Err.Error()
	if e.Evicted {
		s += " (perhaps evicted: the window's bounds evicted events that arrived in the span waited for)"
	}
	switch {
	case e.Undecodable == 1:
		s += "; 1 event could not be decoded: " + e.UndecodableErr.Error()
	case e.Undecodable > 1:
		s += fmt.Sprintf("; %d events could not be decoded: %v", e.Undecodable, e.UndecodableErr)
	}
	return s
}

func (e *MissingError) Unwrap() error { return e.Err }
