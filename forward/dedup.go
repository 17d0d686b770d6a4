package forward

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
)

// DedupSpec configures de-duplication on a route or an output: an alert
// whose identity (parser.Fields.Identity, else a hash of the payload) went
// that way within Window is counted deduplicated and not sent again. At
// most MaxKeys identities are remembered; beyond, the oldest are forgotten
// early (the window shrinks: an alert may then be sent twice, never lost).
type DedupSpec struct {
	Window  time.Duration
	MaxKeys int
}

// DedupBytesPerKey is the heap one remembered identity costs: a map entry
// and an entry of the time-ordered list, an 8-byte hash and an 8-byte time
// each, with the map's and the list's slack (BenchmarkDedupMemory measured
// 55.5 bytes per key over a million keys): max_keys 1,000,000 is about
// 56 MB.
const DedupBytesPerKey = 56

// dedupSet remembers the identities sent one way within a window. Keys are
// 64-bit xxhash values of the identity: two different alerts collide with
// a probability of about n²/2⁶⁵ (a million keys: 3·10⁻⁸).
type dedupSet struct {
	name    string
	window  int64
	maxKeys int
	deduped *metrics.Counter

	mu    sync.Mutex
	at    map[uint64]int64 // key → when it was sent, Unix ns
	order []dedupEntry     // the keys in the order sent; order[head:] are live
	head  int
	early int64
}

type dedupEntry struct {
	key uint64
	at  int64
}

func newDedupSet(name string, spec DedupSpec, deduped *metrics.Counter) *dedupSet {
	if spec.MaxKeys <= 0 {
		spec.MaxKeys = 1_000_000
	}
	return &dedupSet{name: name, window: int64(spec.Window), maxKeys: spec.MaxKeys, deduped: deduped,
		at: map[uint64]int64{}}
}

// dedupKey is the identity's hash, never 0.
func dedupKey(in *RouteInput) uint64 {
	var k uint64
	if in.Fields != nil && len(in.Fields.Identity) > 0 {
		k = xxhash.Sum64(in.Fields.Identity)
	} else {
		k = xxhash.Sum64(in.Payload)
	}
	if k == 0 {
		k = 1
	}
	return k
}

// seen reports whether key was sent within the window before now (and
// counts it deduplicated); otherwise it remembers key as sent now.
func (d *dedupSet) seen(key uint64, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	if t, ok := d.at[key]; ok && now-t < d.window {
		d.deduped.Inc()
		return true
	}
	d.remember(key, now)
	return false
}

func (d *dedupSet) remember(key uint64, at int64) {
	d.at[key] = at
	d.order = append(d.order, dedupEntry{key, at})
	for len(d.at) > d.maxKeys && d.head < len(d.order) {
		d.forget()
		d.early++
	}
}

// expire forgets the keys sent a window or more before now.
func (d *dedupSet) expire(now int64) {
	for d.head < len(d.order) && now-d.order[d.head].at >= d.window {
		d.forget()
	}
	if d.head > 4096 && d.head > len(d.order)/2 {
		n := copy(d.order, d.order[d.head:])
		d.order, d.head = d.order[:n], 0
	}
}

// forget drops the oldest entry (and its key, unless it was sent again
// since).
func (d *dedupSet) forget() {
	e := d.order[d.head]
	if d.at[e.key] == e.at {
		delete(d.at, e.key)
	}
	d.head++
}

// forgotEarly returns how many keys were forgotten before their window
// ended since the last call.
func (d *dedupSet) forgotEarly() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.early
	d.early = 0
	return n
}

// dedupMagic begins a state file.
const dedupMagic = "DTDEDUP1"

// save writes the live keys to path, atomically (a temporary file renamed).
func (d *dedupSet) save(path string, now int64) error {
	d.mu.Lock()
	d.expire(now)
	live := append([]dedupEntry(nil), d.order[d.head:]...)
	d.mu.Unlock()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.WriteString(dedupMagic)
	var buf [16]byte
	for _, e := range live {
		binary.LittleEndian.PutUint64(buf[:8], e.key)
		binary.LittleEndian.PutUint64(buf[8:], uint64(e.at))
		w.Write(buf[:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// load adds the keys of path still within the window at now; a missing
// file is no error.
func (d *dedupSet) load(path string, now int64) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, len(dedupMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != dedupMagic {
		return 0, fmt.Errorf("%s is not a de-duplication state file", path)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	var buf [16]byte
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, fmt.Errorf("%s is cut short: %w", path, err)
		}
		key, at := binary.LittleEndian.Uint64(buf[:8]), int64(binary.LittleEndian.Uint64(buf[8:]))
		if now-at < d.window && at <= now {
			d.remember(key, at)
			n++
		}
	}
}

// dedupSets returns the router's de-duplication sets.
func (r *Router) dedupSets() []*dedupSet {
	var out []*dedupSet
	for i := range r.routes {
		if r.routes[i].dedup != nil {
			out = append(out, r.routes[i].dedup)
		}
	}
	for _, d := range r.outDedup {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// dedupPath is where set d's state lives in dir.
func dedupPath(dir string, d *dedupSet) string {
	return filepath.Join(dir, "dedup-"+d.name+".state")
}

// SaveDedup writes every de-duplication set's live keys to dir.
func (r *Router) SaveDedup(dir string, now time.Time) error {
	var errs []error
	for _, d := range r.dedupSets() {
		if err := d.save(dedupPath(dir, d), now.UnixNano()); err != nil {
			errs = append(errs, fmt.Errorf("cannot save the de-duplication state of %s: %w", d.name, err))
		}
	}
	return errors.Join(errs...)
}

// LoadDedup reads the sets' keys saved in dir, those still within their
// windows, and returns how many.
func (r *Router) LoadDedup(dir string, now time.Time) (int, error) {
	total := 0
	var errs []error
	for _, d := range r.dedupSets() {
		n, err := d.load(dedupPath(dir, d), now.UnixNano())
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// dedupSaveEvery is how often the de-duplication state is saved: a crash
// forgets at most what was sent since (those may then be sent twice).
const dedupSaveEvery = 30 * time.Second

// startDedupState loads the de-duplication state from dir and saves it
// every dedupSaveEvery until stopDedupState. Nothing without dir or sets.
func (p *Pipeline) startDedupState(dir string) {
	if dir == "" || len(p.router.Load().dedupSets()) == 0 {
		return
	}
	p.stateDir = dir
	n, err := p.router.Load().LoadDedup(dir, time.Now())
	if err != nil {
		p.log.Error().Err(err).Msg("cannot read the de-duplication state: alerts sent before the restart may be sent again")
	} else {
		p.log.Info().Int("keys", n).Str("dir", dir).Msg("de-duplication state loaded")
	}
	p.stopSaving, p.saverDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.saverDone)
		t := time.NewTicker(dedupSaveEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stopSaving:
				return
			case <-t.C:
				p.saveDedup()
			}
		}
	}()
}

// saveDedup saves the state and logs the keys forgotten early.
func (p *Pipeline) saveDedup() {
	if err := p.router.Load().SaveDedup(p.stateDir, time.Now()); err != nil {
		p.log.Error().Err(err).Msg("cannot save the de-duplication state")
	}
	for _, d := range p.router.Load().dedupSets() {
		if n := d.forgotEarly(); n > 0 {
			p.log.Warn().Str("set", d.name).Int64("keys", n).Int("max_keys", d.maxKeys).
				Msg("de-duplication forgot keys before their window ended (max_keys reached): duplicates may be sent; raise max_keys or shorten the window")
		}
	}
}

// stopDedupState stops the saver and saves the state a last time.
func (p *Pipeline) stopDedupState() {
	if p.stopSaving == nil {
		return
	}
	close(p.stopSaving)
	<-p.saverDone
	p.stopSaving = nil
	p.saveDedup()
}
