package poller

import (
	"fmt"
	"testing"
)

func TestSeenSet(t *testing.T) {
	t.Run("a key is kept while a window can return its event", func(t *testing.T) {
		s := newSeenSet()
		s.add("a", 1000)
		s.add("b", 2000)
		s.expire(1000) // next window starts at 1000: a's window ended at 1000
		if !s.has("a") || !s.has("b") {
			t.Fatal("expired too early")
		}
		s.expire(1001)
		if s.has("a") || !s.has("b") {
			t.Fatalf("after expire(1001): a %v b %v", s.has("a"), s.has("b"))
		}
	})
	t.Run("seen again, a key lives on", func(t *testing.T) {
		s := newSeenSet()
		s.add("a", 1000)
		s.add("a", 3000)
		s.expire(2000)
		if !s.has("a") {
			t.Fatal("refreshed key forgotten")
		}
		if e := s.entries(5000); len(e) != 1 || e[0] != (seenEntry{K: "a", E: 3000}) {
			t.Fatalf("entries = %v", e)
		}
		s.expire(3001)
		if s.has("a") || s.len() != 0 {
			t.Fatal("not forgotten")
		}
	})
	t.Run("no count limit: only time forgets", func(t *testing.T) {
		// Issue 13 item 5: a fixed-size memory forgot keys that the next
		// window still returned (300,050 events created, 1,100,286
		// forwarded). 300k keys of one window are all kept.
		s := newSeenSet()
		for i := range 300_000 {
			s.add(fmt.Sprint(i), 1000)
		}
		s.expire(1000)
		if s.len() != 300_000 {
			t.Fatalf("%d keys held, want 300000", s.len())
		}
	})
	t.Run("unconfirmed keys: marked when saved, forgotten on failure", func(t *testing.T) {
		s := newSeenSet()
		s.add("confirmed", 1000)
		s.add("inflight", 2000)
		s.add("confirmed", 2000) // seen again by the window in flight
		for _, e := range s.entries(1000) {
			if e.U != (e.K == "inflight") {
				t.Errorf("entry %+v: U wrong for checkpoint 1000", e)
			}
		}
		got := s.forgetAfter(1000)
		if len(got) != 1 || got["inflight"] != 2000 || s.has("inflight") || !s.has("confirmed") {
			t.Fatalf("forgetAfter(1000) = %v; held: %v", got, s.keys)
		}
	})
	t.Run("refreshing costs no order entries; expiry keeps the live keys", func(t *testing.T) {
		s := newSeenSet()
		for round := range int64(50) {
			for k := range 100 {
				s.add(fmt.Sprint(k%60), round*10) // keys 0..39 twice per round
			}
			s.expire(round*10 - 15)
		}
		if s.len() != 60 {
			t.Fatalf("%d keys, want 60", s.len())
		}
		if n := len(s.order) - s.head; n > 2*60 {
			t.Fatalf("order holds %d entries for 60 keys", n)
		}
		s.expire(49*10 + 1)
		if s.len() != 0 {
			t.Fatalf("%d keys left after every window expired", s.len())
		}
	})
}
