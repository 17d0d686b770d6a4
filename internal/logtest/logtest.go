// Package logtest is a log sink for tests: a Buffer that a zerolog.Logger
// writes to from the goroutines under test while the test reads it.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects log output. It is safe for concurrent use; the zero
// value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Lines returns the log lines that contain sub.
func (s *Buffer) Lines(sub string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// LevelLines returns the zerolog JSON lines at level ("error", "warn").
func (s *Buffer) LevelLines(level string) []string { return s.Lines(`"level":"` + level + `"`) }

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
