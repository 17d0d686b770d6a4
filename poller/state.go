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

// stateVersion is the format of the saved state file. Version 2 adds the
// unconfirmed mark (seenEntry.U); version 1 files are read as well.
const stateVersion = 2

// savedState is the content of StateDir/poller-<name>.json.
type savedState struct {
	Version   int                      `json:"version"`
	Endpoints map[string]savedEndpoint `json:"endpoints"`
}

type savedEndpoint struct {
	// Checkpoint is the end (Unix ms) of the last confirmed window.
	Checkpoint int64 `json:"checkpoint_ms"`
	// Seen holds the keys of the events handled in the windows that the
	// next one may overlap, those of windows forwarded but not confirmed
	// marked U (and not suppressed after a restart: forwarded again,
	// counted in resent_total).
	Seen []seenEntry `json:"seen"`
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
	if st.Version != stateVersion && st.Version != 1 {
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

// CheckStateDir creates dir if it is missing (mode 0700) and checks that a
// file can be written and renamed there, as saving the state does: the
// relay refuses to start a poller whose checkpoint cannot be kept.
func CheckStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the poller state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".poller-probe-*")
	if err != nil {
		return fmt.Errorf("cannot write to the poller state directory: %w", err)
	}
	name := f.Name()
	err = f.Close()
	if err == nil {
		err = os.Rename(name, name+".renamed")
		name += ".renamed"
	}
	_ = os.Remove(name)
	if err != nil {
		return fmt.Errorf("cannot write to the poller state directory: %w", err)
	}
	return nil
}
