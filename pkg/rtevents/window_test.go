package rtevents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a Window's clock that only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)} }

func start(id string) Event { return Event{Kind: TaskStart, ContainerID: id, Time: time.Unix(1, 0)} }

// DefaultMax's comment holds: with PodKinds a pod brings one event per
// key (TestSubscribeDeliversThePod: four from a real runc pod), so it
// keeps about eight steps of 500 instances.
func TestDefaultMaxHoldsEightSteps(t *testing.T) {
	perPod := len(PodKeys("sb", "ctr"))
	if perPod != len(PodKinds)*2 || DefaultMax/(500*perPod) != 8 {
		t.Errorf("%d events per pod, DefaultMax %d: %d steps of 500, want the comment's 8", perPod, DefaultMax, DefaultMax/(500*perPod))
	}
}

// The count bound keeps the newest events.
func TestWindowCountBound(t *testing.T) {
	w := NewWindow(3, time.Hour, newClock().now)
	if n, at := w.Evicted(); n != 0 || !at.IsZero() {
		t.Fatalf("Evicted = %d, %v before any event", n, at)
	}
	for i := range 5 {
		w.Add(start(fmt.Sprint(i)))
	}
	if w.Len() != 3 || w.Dropped() != 2 {
		t.Fatalf("len %d, dropped %d; want 3, 2", w.Len(), w.Dropped())
	}
	got := w.Get(Key{TaskStart, "0"}, Key{TaskStart, "1"}, Key{TaskStart, "2"}, Key{TaskStart, "4"})
	if len(got) != 2 || got[Key{TaskStart, "2"}].ContainerID != "2" || got[Key{TaskStart, "4"}].ContainerID != "4" {
		t.Errorf("kept %v, want 2 and 4 of those asked", got)
	}
}

// The age bound counts from arrival by the Window's clock (not from the
// events' own timestamps, all in 1970 here).
func TestWindowAgeBound(t *testing.T) {
	clk := newClock()
	w := NewWindow(100, time.Minute, clk.now)
	w.Add(start("old"))
	clk.advance(30 * time.Second)
	w.Add(start("new"))
	if w.Len() != 2 {
		t.Fatalf("len %d after 30 s, want 2", w.Len())
	}
	clk.advance(31 * time.Second) // "old" arrived 61 s ago
	if got := w.Get(Key{TaskStart, "old"}, Key{TaskStart, "new"}); len(got) != 1 || got[Key{TaskStart, "new"}].ContainerID != "new" {
		t.Errorf("after 61 s: %v, want only new", got)
	}
	if w.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", w.Dropped())
	}
	if n, at := w.Evicted(); n != 1 || !at.Equal(clk.now().Add(-61*time.Second)) {
		t.Errorf("Evicted = %d, %v; want 1 and old's arrival", n, at)
	}
	clk.advance(time.Minute)
	if w.Len() != 0 {
		t.Errorf("len %d after both aged out", w.Len())
	}
	if _, err := w.Wait(canceled(), time.Time{}, Key{TaskStart, "old"}); err == nil || !strings.Contains(err.Error(), "perhaps evicted") {
		t.Errorf("waiting for an evicted event: %v, want it to say events were evicted", err)
	}
}

// A missing event is said perhaps evicted only when events that arrived
// since the wait's since were evicted: older evictions, however many,
// cannot explain it.
func TestWindowEvictedSince(t *testing.T) {
	clk := newClock()
	w := NewWindow(2, time.Hour, clk.now)
	for _, id := range []string{"a", "b", "c"} {
		w.Add(start(id)) // "a" evicted
	}
	clk.advance(time.Second)
	since := clk.now()
	missing := func() *MissingError {
		t.Helper()
		_, err := w.Wait(canceled(), since, Key{TaskStart, "x"})
		var miss *MissingError
		if !errors.As(err, &miss) {
			t.Fatalf("Wait: %v", err)
		}
		return miss
	}
	if miss := missing(); miss.Evicted || strings.Contains(miss.Error(), "evicted") {
		t.Errorf("an eviction before since reported: %v", miss)
	}
	w.Add(start("d"))
	w.Add(start("e")) // evicts "b" and "c", which arrived before since
	if miss := missing(); miss.Evicted {
		t.Errorf("evictions of events older than since reported: %v", miss)
	}
	w.Add(start("f")) // evicts "d", which arrived at since
	if miss := missing(); !miss.Evicted || !strings.Contains(miss.Error(), "perhaps evicted") {
		t.Errorf("an eviction of an event that arrived at since not reported: %v", miss)
	}
}

// A missing event's error counts the events that could not be decoded
// (a changed payload type would otherwise look like events that never
// came) and gives the latest's error, when that one came since since.
func TestWindowUndecodable(t *testing.T) {
	clk := newClock()
	w := NewWindow(0, time.Hour, clk.now)
	w.Undecodable(errors.New("an old one"))
	clk.advance(time.Second)
	since := clk.now()
	_, err := w.Wait(canceled(), since, Key{TaskStart, "x"})
	if want := "no task_start x: context canceled"; err == nil || err.Error() != want {
		t.Errorf("with an undecodable event before since: %v, want %q", err, want)
	}
	w.Undecodable(errors.New(`event /tasks/start carries "containerd.events.TaskStartV2", want containerd.events.TaskStart`))
	_, err = w.Wait(canceled(), since, Key{TaskStart, "x"})
	var miss *MissingError
	if !errors.As(err, &miss) || miss.Undecodable != 2 {
		t.Fatalf("Wait: %v, want a MissingError counting 2 undecodable", err)
	}
	if want := `no task_start x: context canceled; 2 events could not be decoded: event /tasks/start carries "containerd.events.TaskStartV2", want containerd.events.TaskStart`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// A key seen twice (containerd IDs do not repeat, but nothing forbids it)
// gives the first one held, and the next once the first is evicted.
func TestWindowRepeatedKey(t *testing.T) {
	w := NewWindow(2, time.Hour, newClock().now)
	first, second := start("a"), start("a")
	first.PID, second.PID = 1, 2
	w.Add(first)
	w.Add(second)
	if got := w.Get(Key{TaskStart, "a"}); got[Key{TaskStart, "a"}].PID != 1 {
		t.Errorf("got %v, want the first", got)
	}
	w.Add(start("b"))
	if got := w.Get(Key{TaskStart, "a"}); got[Key{TaskStart, "a"}].PID != 2 {
		t.Errorf("got %v after the first was evicted, want the second", got)
	}
	w.Add(start("c"))
	if got := w.Get(Key{TaskStart, "a"}); len(got) != 0 {
		t.Errorf("got %v after both were evicted", got)
	}
}

// Wait returns as soon as the last key's event arrives, with all of them.
func TestWindowWaitForLateEvents(t *testing.T) {
	w := NewWindow(0, 0, nil)
	keys := PodKeys("sb", "ctr")
	w.Add(Event{Kind: ContainerCreate, ContainerID: "sb"})
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Add(Event{Kind: TaskStart, ContainerID: "sb"})
		w.Add(Event{Kind: ContainerCreate, ContainerID: "other"})
		w.Add(Event{Kind: ContainerCreate, ContainerID: "ctr"})
		time.Sleep(20 * time.Millisecond)
		w.Add(Event{Kind: TaskStart, ContainerID: "ctr"})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := w.Wait(ctx, time.Time{}, keys...)
	if err != nil || len(got) != 4 {
		t.Fatalf("Wait: %v, %v", got, err)
	}
	for _, k := range keys {
		if got[k].Key() != k {
			t.Errorf("%v: got %+v", k, got[k])
		}
	}
}

// A wait that times out says which events are missing and why, and hands
// back those that came.
func TestWindowWaitTimesOut(t *testing.T) {
	w := NewWindow(0, 0, nil)
	w.Add(Event{Kind: ContainerCreate, ContainerID: "sb"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	got, err := w.Wait(ctx, time.Time{}, PodKeys("sb", "ctr")...)
	var miss *MissingError
	if !errors.As(err, &miss) || !errors.Is(err, context.DeadlineExceeded) || len(miss.Missing) != 3 || len(got) != 1 {
		t.Fatalf("Wait: %v, %v; want sb's ContainerCreate and a deadline naming 3 missing", got, err)
	}
	if want := "no task_start sb, container_create ctr, task_start ctr: context deadline exceeded"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// A lost stream ends every wait at once with its reason, and later waits
// too; events that did come are still handed back, and a wait they
// satisfy succeeds.
func TestWindowLost(t *testing.T) {
	w := NewWindow(0, 0, nil)
	w.Add(Event{Kind: ContainerCreate, ContainerID: "sb"})
	lost := errors.New("containerd event stream lost: EOF")
	done := make(chan error)
	go func() {
		_, err := w.Wait(context.Background(), time.Time{}, PodKeys("sb", "ctr")...)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	w.Lose(lost)
	w.Lose(ErrClosed) // the first reason stays
	select {
	case err := <-done:
		if !errors.Is(err, lost) {
			t.Errorf("waiter got %v, want the loss", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter was not woken by the loss")
	}
	if !errors.Is(w.Err(), lost) {
		t.Errorf("Err = %v", w.Err())
	}
	if got, err := w.Wait(context.Background(), time.Time{}, Key{ContainerCreate, "sb"}); err != nil || len(got) != 1 {
		t.Errorf("a wait the held events satisfy: %v, %v", got, err)
	}
}

// A waiter is woken only by its keys' events: at 500 instances, waking
// every waiter at every event would be 500² wake-ups. Its looks are
// counted by the Window's clock, which each look reads once (pruning).
func TestWindowWaiterSleepsThroughOthersEvents(t *testing.T) {
	clk := newClock()
	var reads atomic.Int64
	w := NewWindow(0, time.Hour, func() time.Time { reads.Add(1); return clk.now() })
	before := reads.Load()
	w.Add(start("calibration"))
	perAdd := reads.Load() - before
	done := make(chan error)
	go func() {
		_, err := w.Wait(context.Background(), time.Time{}, Key{TaskStart, "mine"})
		done <- err
	}()
	for reads.Load() == before+perAdd { // until the waiter's first look
		time.Sleep(time.Millisecond)
	}
	before = reads.Load()
	const others = 20
	for i := range others {
		w.Add(start(fmt.Sprint("other-", i)))
		time.Sleep(2 * time.Millisecond) // time for a woken waiter to look
	}
	if looks := reads.Load() - before - others*perAdd; looks != 0 {
		t.Errorf("the waiter looked %d times at %d events not its own, want 0", looks, others)
	}
	w.Add(start("mine"))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not woken by its event")
	}
}

// Adds, waits and gets from many goroutines at once (run with -race).
func TestWindowConcurrent(t *testing.T) {
	w := NewWindow(64, time.Hour, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 50 {
				w.Add(start(fmt.Sprintf("%d-%d", i, j)))
			}
		}()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			// The event may come and go (evicted by the others') before
			// the wait looks: then the wait must say events were evicted.
			if _, err := w.Wait(ctx, time.Time{}, Key{TaskStart, fmt.Sprintf("%d-49", i)}); err != nil {
				var miss *MissingError
				if !errors.As(err, &miss) || !miss.Evicted {
					t.Errorf("wait %d: %v", i, err)
				}
			}
			w.Get(Key{TaskStart, "0-0"})
		}()
	}
	wg.Wait()
	if w.Len() != 64 || w.Dropped() != 20*50-64 {
		t.Errorf("len %d, dropped %d", w.Len(), w.Dropped())
	}
}
