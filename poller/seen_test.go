package poller

import (
	"fmt"
	"testing"
)

func TestSeenSet(t *testing.T) {
	t.Run("a key is kept while a window can return its event", func(t *testing.T) {
		s := newSeenSet(100)
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
		s := newSeenSet(100)
		s.add("a", 1000)
		s.add("a", 3000)
		s.expire(2000)
		if !s.has("a") {
			t.Fatal("refreshed key forgotten")
		}
		if e := s.entries(); len(e) != 1 || e[0] != (seenEntry{"a", 3000}) {
			t.Fatalf("entries = %v", e)
		}
		s.expire(3001)
		if s.has("a") || s.len() != 0 {
			t.Fatal("not forgotten")
		}
	})
	t.Run("at most max keys, the oldest forgotten", func(t *testing.T) {
		s := newSeenSet(3)
		evicted := 0
		for i := range 5 {
			evicted += s.add(fmt.Sprint(i), int64(i))
		}
		if evicted != 2 || s.len() != 3 || s.has("0") || s.has("1") || !s.has("4") {
			t.Fatalf("evicted %d, len %d", evicted, s.len())
		}
	})
	t.Run("compaction keeps the live keys in order", func(t *testing.T) {
		s := newSeenSet(1 << 20)
		for round := range int64(50) {
			for k := range 100 {
				s.add(fmt.Sprint(k%60), round*10) // keys 0..39 added twice per round
			}
			s.expire(round*10 - 15)
		}
		e := s.entries()
		if len(e) != 60 || s.len() != 60 {
			t.Fatalf("%d entries, %d keys, want 60", len(e), s.len())
		}
		for i := 1; i < len(e); i++ {
			if e[i].E < e[i-1].E {
				t.Fatalf("entries out of order at %d", i)
			}
		}
		if len(s.order)-s.head > 4*60+100 {
			t.Fatalf("order holds %d entries for 60 keys", len(s.order)-s.head)
		}
	})
}
