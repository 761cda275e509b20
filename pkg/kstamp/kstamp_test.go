package kstamp

import (
	"strings"
	"testing"
	"time"
)

// A stamp becomes the reference's monotonic reading shifted by the stamp's
// distance from the reference's wall clock; durations between converted
// stamps are the stamps' own.
func TestClockConvertsStampsOntoTheMonotonicClock(t *testing.T) {
	ref := time.Now()
	c := ClockAt(1_800_000_000_000_000_000, ref) // the wall clock read with ref
	a := c.Time(Stamp(1_800_000_000_000_000_000 + 1_500))
	b := c.Time(Stamp(1_800_000_000_000_000_000 - 250_000))
	if a.Sub(ref) != 1500*time.Nanosecond || b.Sub(ref) != -250*time.Microsecond || a.Sub(b) != 251500*time.Nanosecond {
		t.Errorf("converted %v and %v from the reference", a.Sub(ref), b.Sub(ref))
	}
	if a.Sub(ref.Add(time.Millisecond)) != -998500*time.Nanosecond {
		t.Error("a converted stamp does not carry the monotonic reading")
	}
	if !c.Time(0).IsZero() || !(Clock{}).Time(5).IsZero() {
		t.Error("a missing stamp or reference converted to a time")
	}
}

// Step is the wall clock's move against the monotonic clock between two
// references: none for two reads of the running clocks, the step's size
// when the wall clock was set in between.
func TestClockStep(t *testing.T) {
	before := NewClock()
	time.Sleep(2 * time.Millisecond)
	after := NewClock()
	if s := before.Step(after); s > 50*time.Microsecond || s < -50*time.Microsecond {
		t.Errorf("two reads of the running clocks differ by %v: want ~0 (≤ 50 µs even preempted between every pair's reads)", s)
	}
	ref := time.Now()
	c := ClockAt(ref.UnixNano(), ref)
	later := ref.Add(time.Second)
	if s := c.Step(ClockAt(later.UnixNano()-int64(3*time.Millisecond), later)); s != -3*time.Millisecond {
		t.Errorf("a wall clock set back 3 ms: step %v", s)
	}
	if s := c.Step(ClockAt(later.UnixNano(), later)); s != 0 {
		t.Errorf("no step: %v", s)
	}
	if n := c.StepNote(ClockAt(later.UnixNano()-int64(3*time.Millisecond), later), "the step"); !strings.Contains(n, "stepped by -3ms during the step") {
		t.Errorf("note of a 3 ms step: %q", n)
	}
	if n := c.StepNote(ClockAt(later.UnixNano()+int64(MaxStep/2), later), "the step"); n != "" {
		t.Errorf("a step within MaxStep noted: %q", n)
	}
}

func TestStampAtFindsTheReadOfAByte(t *testing.T) {
	reads := []Read{{End: 9, Stamp: 1}, {End: 9 + 50, Stamp: 2}, {End: 100, Stamp: 3}}
	for off, want := range map[int64]Stamp{0: 1, 8: 1, 9: 2, 58: 2, 59: 3, 99: 3} {
		if r, ok := StampAt(reads, off); !ok || r.Stamp != want {
			t.Errorf("byte %d: read %+v (%v), want the one stamped %d", off, r, ok, want)
		}
	}
	if _, ok := StampAt(reads, 100); ok {
		t.Error("a byte not yet read was found")
	}
	if _, ok := StampAt(nil, 0); ok {
		t.Error("found in no reads")
	}
}
