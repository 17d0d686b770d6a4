package output

import (
	"context"
	"fmt"
	"os"

	"github.com/dtrelay/dtrelay/forward"
)

// FileSender appends batches to a file, or to standard output; its events
// are encoded by NDJSONEncoder, one JSON payload per line. Each batch is
// written with one write call, so lines are never interleaved.
type FileSender struct {
	f     *os.File
	close bool
}

// NewFileSender opens path for appending ("-" is standard output). A new
// file is created with mode 0640 (less if the umask says so). A symbolic
// link at path is refused rather than followed: whoever can write to the
// file's directory must not be able to point dtrelay (often run with more
// rights) at another file. The link is refused by O_NOFOLLOW at open, so
// a link put in place after a check is refused too. Only the last
// component of path is concerned: links among its directories are
// followed as usual.
func NewFileSender(path string) (*FileSender, error) {
	if path == "-" {
		return &FileSender{f: os.Stdout}, nil
	}
	if isSymlink(path) {
		return nil, symlinkError(path)
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &FileSender{f: f, close: true}, nil
}

// openAppend opens or creates path (0640) for appending, without following
// a symbolic link there.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|oNoFollow, 0o640)
	if err != nil {
		if isSymlink(path) { // put there after NewFileSender's check
			return nil, symlinkError(path)
		}
		return nil, fmt.Errorf("cannot open output file: %w", err)
	}
	return f, nil
}

func isSymlink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

func symlinkError(path string) error {
	return fmt.Errorf("cannot open output file: %s is a symbolic link, which dtrelay does not follow: "+
		"name the file itself (\"-\" is standard output)", path)
}

// Send implements Sender. The batch is handed to the kernel before Send
// returns; it is not fsynced.
func (s *FileSender) Send(_ context.Context, b *forward.Batch) error {
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
