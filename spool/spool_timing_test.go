package spool

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// benchRecord returns a Darktrace-shaped record of exactly size bytes.
func benchRecord(tb testing.TB, size int) []byte {
	base := alerts(tb)[0]
	if len(base) > size {
		tb.Fatalf("sample of %d bytes longer than %d", len(base), size)
	}
	// Pad inside the JSON object, as a longer alert would be.
	pad := size - len(base) - len(`,"pad":""`)
	rec := append([]byte(nil), base[:len(base)-1]...)
	rec = append(rec, `,"pad":"`...)
	rec = append(rec, bytes.Repeat([]byte("x"), pad)...)
	return append(rec, `"}`...)
}

// benchOptions: production segment size and fsync interval; the size bound
// keeps the disk used by a long run small.
func benchOptions(dir, whenFull string) Options {
	opts := testOptions(dir, "out")
	opts.MaxSize, opts.SegmentSize, opts.FsyncInterval = 512<<20, DefaultSegmentSize, DefaultFsyncInterval
	opts.WhenFull = whenFull
	return opts
}

var benchSizes = []int{1536, 4096}

// BenchmarkAppend measures spool write throughput (MB/s), group commit
// (fsync every second) included; the oldest segments are dropped to bound
// the disk used.
func BenchmarkAppend(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := mustOpen(b, benchOptions(b.TempDir(), WhenFullDropOldest))
			defer s.Close()
			rec := benchRecord(b, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(rec); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkAppendParallel appends from two goroutines.
func BenchmarkAppendParallel(b *testing.B) {
	s := mustOpen(b, benchOptions(b.TempDir(), WhenFullDropOldest))
	defer s.Close()
	rec := benchRecord(b, 1536)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Append(rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadAck measures end-to-end throughput: one goroutine appends,
// the consumer reads every record and acknowledges every 256th, which
// deletes segments behind it (when_full block bounds the lag).
func BenchmarkReadAck(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := mustOpen(b, benchOptions(b.TempDir(), WhenFullBlock))
			defer s.Close()
			r := mustReader(b, s, "out")
			rec := benchRecord(b, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			errc := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := s.Append(rec); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for i := 0; i < b.N; i++ {
				got, pos, err := r.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != size {
					b.Fatalf("record of %d bytes", len(got))
				}
				if i%256 == 255 || i == b.N-1 {
					if err := r.Ack(pos); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkAppendBlock appends records in calls of about 64 KiB, as the
// pipeline does (one call per published block, one block per read).
func BenchmarkAppendBlock(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := mustOpen(b, benchOptions(b.TempDir(), WhenFullDropOldest))
			defer s.Close()
			rec := benchRecord(b, size)
			block := make([][]byte, (64<<10)/size)
			for i := range block {
				block[i] = rec
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += len(block) {
				if _, err := s.Append(block...); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
