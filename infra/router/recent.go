package router

import "sync"

// recentIDs remembers the last event ids this router queued. MinIO sends
// every event twice (see MinIOTarget); the second copy is recognised here
// without a JetStream round trip. JetStream's duplicate window stays the
// authority across restarts and routers.
type recentIDs struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(size int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, size), ring: make([]string, size)}
}

// seen reports whether id was added before.
func (r *recentIDs) seen(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[id]
	return ok
}

// add records id, forgetting the oldest when full.
func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
