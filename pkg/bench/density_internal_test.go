package bench

import (
	"testing"
	"time"
)

// The removal's bound grows with the instances a run may keep: 1000 at the
// 0.9 s each this node took would not fit in a fixed 15 minutes.
func TestRemoveKeptTimeoutGrowsWithTheCap(t *testing.T) {
	for _, c := range []struct {
		max  int
		want time.Duration
	}{{10, 15 * time.Minute}, {450, 15 * time.Minute}, {1000, 2000 * time.Second}} {
		if got := removeKeptTimeout(c.max); got != c.want {
			t.Errorf("removeKeptTimeout(%d) = %v, want %v", c.max, got, c.want)
		}
	}
}
