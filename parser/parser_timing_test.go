package parser_test

import (
	"fmt"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

var benchSizes = []int{500, 1500, 4000, 14000}

var benchKinds = []parser.Kind{parser.KindModelBreach, parser.KindAIAnalyst}

// BenchmarkScan measures the header scan alone, per header style, on a
// 1.5 KB model breach (the cost does not depend on the payload size).
func BenchmarkScan(b *testing.B) {
	payload := parsertest.Alert(nil, parser.KindModelBreach, 1, 1500)
	for _, s := range parsertest.Styles {
		frame := parsertest.Frame(nil, s, "darktrace", payload)
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			var h parser.Header
			for b.Loop() {
				parser.Scan(frame, &h)
			}
		})
	}
}

// BenchmarkClassify measures scan + field reads per family and size;
// "strict" adds the UTF-8 check (Classifier.Strict).
func BenchmarkClassify(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range benchSizes {
			payload := parsertest.Alert(nil, kind, 1, size)
			for _, strict := range []bool{false, true} {
				if strict && size != 1500 && size != 4000 {
					continue
				}
				name := fmt.Sprintf("%s/%d", kind, size)
				if strict {
					name += "/strict"
				}
				b.Run(name, func(b *testing.B) {
					c := parser.Classifier{Strict: strict}
					var a parser.Alert
					b.ReportAllocs()
					b.SetBytes(int64(len(payload)))
					for b.Loop() {
						if err := c.Classify(payload, nil, &a); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkScanClassify is the parser's whole hot path for one RFC 3164
// frame, as the receiver runs it.
func BenchmarkScanClassify(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range benchSizes {
			frame := parsertest.Frame(nil, parsertest.RFC3164, "darktrace", parsertest.Alert(nil, kind, 1, size))
			b.Run(fmt.Sprintf("%s/%d", kind, size), func(b *testing.B) {
				var c parser.Classifier
				var h parser.Header
				var a parser.Alert
				b.ReportAllocs()
				b.SetBytes(int64(len(frame)))
				for b.Loop() {
					parser.Scan(frame, &h)
					if err := c.Classify(h.Payload.Bytes(frame), h.App.Bytes(frame), &a); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkScanClassifyDetails is BenchmarkScanClassify with
// ClassifyDetails instead of Classify: the work Classify did on every
// message before Time, ID and Suppressed became opt-in, and what
// de-duplication will pay where it needs them.
func BenchmarkScanClassifyDetails(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range benchSizes {
			frame := parsertest.Frame(nil, parsertest.RFC3164, "darktrace", parsertest.Alert(nil, kind, 1, size))
			b.Run(fmt.Sprintf("%s/%d", kind, size), func(b *testing.B) {
				var c parser.Classifier
				var h parser.Header
				var a parser.Alert
				var d parser.Details
				b.ReportAllocs()
				b.SetBytes(int64(len(frame)))
				for b.Loop() {
					parser.Scan(frame, &h)
					if err := c.ClassifyDetails(h.Payload.Bytes(frame), h.App.Bytes(frame), &a, &d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkJSON puts the classifier side by side with fastjson on the
// same payloads: "classify" (scan + field reads, what Classify costs),
// "classify_strict" (plus the UTF-8 check), and fastjson's parser and
// validator alone, without reading any field ("fastjson_parse" is what
// the classifier cost before it had its own scanner, field reads aside).
func BenchmarkJSON(b *testing.B) {
	for _, kind := range benchKinds {
		for _, size := range []int{1500, 4000} {
			payload := parsertest.Alert(nil, kind, 1, size)
			for _, strict := range []bool{false, true} {
				name := "classify"
				if strict {
					name = "classify_strict"
				}
				b.Run(fmt.Sprintf("%s/%d/%s", kind, size, name), func(b *testing.B) {
					c := parser.Classifier{Strict: strict}
					var a parser.Alert
					b.ReportAllocs()
					b.SetBytes(int64(len(payload)))
					for b.Loop() {
						if err := c.Classify(payload, nil, &a); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run(fmt.Sprintf("%s/%d/fastjson_parse", kind, size), func(b *testing.B) {
				var p fastjson.Parser
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					if _, err := p.ParseBytes(payload); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%d/fastjson_validate", kind, size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					if err := fastjson.ValidateBytes(payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
