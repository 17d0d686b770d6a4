package poller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// stateVersion is the format of the saved state file.
const stateVersion = 1

// savedState is the content of StateDir/poller-<name>.json.
type savedState struct {
	Version   int                      `json:"version"`
	Endpoints map[string]savedEndpoint `json:"endpoints"`
}

type savedEndpoint struct {
	// Checkpoint is the end (Unix ms) of the last confirmed window.
	Checkpoint int64       `json:"checkpoint_ms"`
	Seen       []seenEntry `json:"seen"`
}

// statePath returns the state file of input name in dir: poller-<name>.json,
// with the characters of name other than letters, digits, '.', '-' and '_'
// replaced by '_'.
func statePath(dir, name string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	return filepath.Join(dir, "poller-"+safe+".json")
}

// loadState reads the state file; a missing file is (nil, nil).
func loadState(path string) (*savedState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read poller state: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cannot parse poller state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("poller: state %s has version %d, want %d", path, st.Version, stateVersion)
	}
	return &st, nil
}

// saveState writes st to path atomically: a temporary file, synced, renamed
// over path, and the directory synced.
func saveState(path string, st *savedState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("cannot encode poller state: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write poller state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot write poller state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
