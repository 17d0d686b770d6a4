package receiver

import (
	"bytes"
	"strconv"
	"testing"
)

// benchAlert builds a Darktrace-shaped RFC 5424 alert of about size bytes.
func benchAlert(size int) []byte {
	head := `<165>1 2024-05-14T09:21:07+00:00 dt-master-01 darktrace - - - {"pbid":48213,"score":0.674,"model":{"name":"Anomalous Connection::Data Sent to Rare Domain"},"pad":"`
	b := []byte(head)
	for len(b) < size-2 {
		b = append(b, 'p')
	}
	return append(b, `"}`...)
}

// benchStream returns n alerts of about size bytes, octet-counted or
// LF-terminated.
func benchStream(n, size int, octet bool) []byte {
	alert := benchAlert(size)
	var b bytes.Buffer
	for range n {
		if octet {
			b.WriteString(strconv.Itoa(len(alert)))
			b.WriteByte(' ')
			b.Write(alert)
		} else {
			b.Write(alert)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// BenchmarkFramer feeds a 64 KiB-ish stream of alerts per iteration: whole
// (every frame zero-copy), split in two reads, and in 512-byte pieces
// (every frame split, copied once).
func BenchmarkFramer(b *testing.B) {
	for _, size := range []int{1500, 4096} {
		for _, octet := range []bool{true, false} {
			mode := "lf"
			if octet {
				mode = "octet"
			}
			stream := benchStream(64<<10/size, size, octet)
			pieces := map[string]int{"whole": len(stream), "split2": len(stream)/2 + 13, "pieces512": 512}
			for _, name := range []string{"whole", "split2", "pieces512"} {
				step := pieces[name]
				b.Run(mode+"/"+strconv.Itoa(size)+"/"+name, func(b *testing.B) {
					f := NewFramer(0)
					var sink countSink
					b.ReportAllocs()
					b.SetBytes(int64(len(stream)))
					for b.Loop() {
						for i := 0; i < len(stream); i += step {
							f.Feed(stream[i:min(i+step, len(stream))], &sink)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sink.frames), "ns/frame")
				})
			}
		}
	}
}

// BenchmarkFramerBigFrameSmallReads shows the cost of one 256 KiB frame
// arriving in 100-byte reads is linear (compare with ns/op of one read).
func BenchmarkFramerBigFrameSmallReads(b *testing.B) {
	for _, octet := range []bool{true, false} {
		name := "lf"
		if octet {
			name = "octet"
		}
		stream := benchStream(1, 255<<10, octet)
		b.Run(name, func(b *testing.B) {
			f := NewFramer(0)
			var sink countSink
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				for i := 0; i < len(stream); i += 100 {
					f.Feed(stream[i:min(i+100, len(stream))], &sink)
				}
			}
		})
	}
}
