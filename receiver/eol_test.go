package receiver

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// refIndexEOL is the obvious definition of indexEOL.
func refIndexEOL(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == 0 {
			return i
		}
	}
	return -1
}

// TestIndexEOL checks indexEOL (the AVX2 path where the CPU has it) and
// indexEOLGeneric against refIndexEOL: every length up to a few chunks,
// every start alignment, a terminator of either kind at every position,
// both kinds together, and none.
func TestIndexEOL(t *testing.T) {
	impls := map[string]func([]byte) int{"indexEOL": indexEOL, "generic": indexEOLGeneric}
	buf := bytes.Repeat([]byte("x"), 2*eolChunk+200)
	check := func(b []byte) {
		t.Helper()
		want := refIndexEOL(b)
		for name, f := range impls {
			if got := f(b); got != want {
				t.Fatalf("%s(%q) = %d, want %d", name, b, got, want)
			}
		}
	}
	for align := range 33 {
		for n := 0; n+align <= len(buf); n += 1 + n/16 {
			b := buf[align : align+n]
			check(b)
			for i := range b {
				for _, term := range []byte{'\n', 0} {
					b[i] = term
					check(b)
					if i+3 < len(b) { // the other kind after it
						b[i+3] = '\n' + 0 - term
						check(b)
						b[i+3] = 'x'
					}
					b[i] = 'x'
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(3*eolChunk))
		for i := range b {
			b[i] = byte(rng.IntN(256)) | 1 // no NUL
			if b[i] == '\n' {
				b[i] = 'y'
			}
		}
		for range rng.IntN(3) {
			if len(b) > 0 {
				b[rng.IntN(len(b))] = []byte{0, '\n'}[rng.IntN(2)]
			}
		}
		check(b)
	}
}

func FuzzIndexEOL(f *testing.F) {
	f.Add([]byte("<14>hello\x00<14>world\x00"))
	f.Add([]byte("<165>a {}\n"))
	f.Add(bytes.Repeat([]byte("z"), 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		want := refIndexEOL(b)
		if got := indexEOL(b); got != want {
			t.Fatalf("indexEOL = %d, want %d", got, want)
		}
		if got := indexEOLGeneric(b); got != want {
			t.Fatalf("indexEOLGeneric = %d, want %d", got, want)
		}
	})
}

// BenchmarkIndexEOL compares the LF-or-NUL scan with bytes.IndexByte
// scanning for LF alone, on a 1500-byte line.
func BenchmarkIndexEOL(b *testing.B) {
	line := append(bytes.Repeat([]byte("p"), 1499), '\n')
	impls := []struct {
		name string
		f    func([]byte) int
	}{
		{"IndexByteLF", func(b []byte) int { return bytes.IndexByte(b, '\n') }},
		{"indexEOL", indexEOL},
		{"generic", indexEOLGeneric},
	}
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			n := 0
			for b.Loop() {
				n += im.f(line)
			}
			if n < 0 {
				b.Fatal(n)
			}
		})
	}
}
