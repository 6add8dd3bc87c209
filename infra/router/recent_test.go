package router

import "testing"

func TestRecentIDsForgetsOldest(t *testing.T) {
	r := newRecentIDs(3)
	for _, id := range []string{"a", "b", "c"} {
		r.add(id)
	}
	r.add("b") // no double entry
	if !r.seen("a") || !r.seen("b") || !r.seen("c") {
		t.Fatal("lost an id before the ring was full")
	}
	r.add("d")
	if r.seen("a") || !r.seen("d") || !r.seen("b") {
		t.Fatal("did not forget exactly the oldest")
	}
}
