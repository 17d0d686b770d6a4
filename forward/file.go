package forward

import (
	"context"
	"fmt"
	"os"
)

// FileSender appends batches to a file, or to standard output; its events
// are encoded by NDJSONEncoder, one JSON payload per line. Each batch is
// written with one write call, so lines are never interleaved.
type FileSender struct {
	f     *os.File
	close bool
}

// NewFileSender opens path for appending ("-" is standard output).
func NewFileSender(path string) (*FileSender, error) {
	if path == "-" {
		return &FileSender{f: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open output file: %w", err)
	}
	return &FileSender{f: f, close: true}, nil
}

// Send implements Sender. The batch is handed to the kernel before Send
// returns; it is not fsynced.
func (s *FileSender) Send(_ context.Context, b *Batch) error {
	if _, err := s.f.Write(b.Data); err != nil {
		return fmt.Errorf("cannot write %s: %w", s.f.Name(), err)
	}
	return nil
}

// Close implements Sender.
func (s *FileSender) Close() error {
	if !s.close {
		return nil
	}
	return s.f.Close()
}
