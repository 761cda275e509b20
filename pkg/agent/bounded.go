package agent

import "time"

// bounded is a map that forgets its oldest entries: at most max of them,
// none inserted more than maxAge ago. The agent runs for weeks beside a
// kubelet that creates containers all along, so everything it remembers
// per container or pod (labels looked up, pods seen) is bounded like the
// events themselves. Age counts from the first insertion of a key (a pod's
// events come within seconds of each other); updating a value keeps its
// place. Not safe for concurrent use: its owner locks.
type bounded[K comparable, V any] struct {
	max    int
	maxAge time.Duration
	m      map[K]V
	order  []inserted[K] // oldest first
}

type inserted[K comparable] struct {
	key K
	at  time.Time
}

func newBounded[K comparable, V any](max int, maxAge time.Duration) *bounded[K, V] {
	return &bounded[K, V]{max: max, maxAge: maxAge, m: map[K]V{}}
}

// get returns k's value, if still held at now.
func (b *bounded[K, V]) get(k K, now time.Time) (V, bool) {
	b.prune(now)
	v, ok := b.m[k]
	return v, ok
}

// put sets k's value; a new key is inserted at now.
func (b *bounded[K, V]) put(k K, v V, now time.Time) {
	if _, ok := b.m[k]; !ok {
		b.order = append(b.order, inserted[K]{key: k, at: now})
	}
	b.m[k] = v
	b.prune(now)
}

// len is how many entries are held at now.
func (b *bounded[K, V]) len(now time.Time) int {
	b.prune(now)
	return len(b.m)
}

// each calls f for every entry held at now, oldest first.
func (b *bounded[K, V]) each(now time.Time, f func(K, V)) {
	b.prune(now)
	for _, in := range b.order {
		f(in.key, b.m[in.key])
	}
}

// prune forgets what is over the bounds at now, oldest first.
func (b *bounded[K, V]) prune(now time.Time) {
	cut := max(len(b.order)-b.max, 0)
	old := now.Add(-b.maxAge)
	for cut < len(b.order) && b.order[cut].at.Before(old) {
		cut++
	}
	if cut == 0 {
		return
	}
	for _, in := range b.order[:cut] {
		delete(b.m, in.key)
	}
	// Resliced: the next append that outgrows the backing array copies
	// only the live part, so the dead prefix does not accumulate.
	b.order = b.order[cut:]
}
