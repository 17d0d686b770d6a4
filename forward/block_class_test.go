package forward

import "testing"

// TestBlockClasses: classFor picks the smallest class holding n, and no
// class holds more than 25% over what it was asked for (from 512 bytes).
func TestBlockClasses(t *testing.T) {
	if classSize(0) != 512 || classSize(numClasses-1) != 64<<20 {
		t.Fatalf("classes span %d..%d bytes", classSize(0), classSize(numClasses-1))
	}
	for c := 1; c < numClasses; c++ {
		if classSize(c) <= classSize(c-1) {
			t.Fatalf("class %d (%d bytes) not above class %d (%d)", c, classSize(c), c-1, classSize(c-1))
		}
	}
	check := func(n int) {
		t.Helper()
		c := classFor(n)
		if classSize(c) < n || (c > 0 && classSize(c-1) >= n) {
			t.Fatalf("classFor(%d) = %d (%d bytes), not the smallest that holds it", n, c, classSize(c))
		}
		if n > 512 && float64(classSize(c)) > 1.25*float64(n) {
			t.Fatalf("classFor(%d): %d bytes, more than 25%% over", n, classSize(c))
		}
	}
	for n := 1; n <= 1<<20; n++ {
		check(n)
	}
	for n := 1 << 20; n <= 64<<20; n += 4093 {
		check(n)
	}
	if classFor(firstBlockSize) != classFor(firstBlockSize-1) || classSize(classFor(firstBlockSize)) != firstBlockSize {
		t.Fatal("firstBlockSize is not a class size")
	}
	if classSize(classFor(bigBlockSize)) != bigBlockSize {
		t.Fatal("bigBlockSize is not a class size")
	}
}
