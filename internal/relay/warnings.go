package relay

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/secret"
)

// MaxWarnings is how many warnings the status page shows: the latest.
const MaxWarnings = 10

// maxWarningText bounds a warning's message and its fields as shown, after
// redaction.
const maxWarningText = 600

// Warning is one warn-level (or worse) log event, as the status page shows
// it: when, its level, its message and its other fields as "key=value"
// pairs, secrets redacted.
type Warning struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Fields  string    `json:"fields"`
}

// Warnings keeps the last MaxWarnings log events at warn level or above.
// Put it in the logger's writer beside the real one
// (zerolog.MultiLevelWriter(stderr, w)) and give it to Start (WithWarnings).
// A line below warn level costs one comparison; warnings are rare, and
// each is parsed once when written. Safe for concurrent use.
type Warnings struct {
	mu    sync.Mutex
	ring  [MaxWarnings]Warning
	next  int    // where the next one goes
	total uint64 // warnings written since the start

	secrets atomic.Pointer[secret.Set] // the relay's (setSecrets); nil: none yet
}

// NewWarnings returns an empty ring of warnings.
func NewWarnings() *Warnings { return &Warnings{} }

// Write is for io.Writer: zerolog calls WriteLevel on a LevelWriter, so a
// line that comes here has no level and is not kept.
func (w *Warnings) Write(p []byte) (int, error) { return len(p), nil }

// WriteLevel keeps the JSON log line p when level is warn or above.
func (w *Warnings) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	if level < zerolog.WarnLevel || level == zerolog.NoLevel || level == zerolog.Disabled {
		return len(p), nil
	}
	wa := parseWarning(level, p, time.Now(), w.secrets.Load())
	w.mu.Lock()
	w.ring[w.next] = wa
	w.next = (w.next + 1) % MaxWarnings
	w.total++
	w.mu.Unlock()
	return len(p), nil
}

// Last returns the warnings kept, the latest first, and how many were
// written in all. Redacted again with the current secrets: a warning
// written before a reload added a key is masked for it too.
func (w *Warnings) Last() ([]Warning, uint64) {
	if w == nil {
		return nil, 0
	}
	s := w.secrets.Load()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Warning
	for i := 1; i <= MaxWarnings; i++ {
		wa := w.ring[(w.next-i+MaxWarnings)%MaxWarnings]
		if wa.Time.IsZero() {
			break
		}
		wa.Message, _ = s.Cut(wa.Message, maxWarningText)
		wa.Fields, _ = s.Cut(wa.Fields, maxWarningText)
		out = append(out, wa)
	}
	return out, w.total
}

func (w *Warnings) setSecrets(s *secret.Set) {
	if w != nil {
		w.secrets.Store(s)
	}
}

// parseWarning reads a zerolog JSON line: its message, and its other
// fields but time and level in their order, as key=value (strings as they
// are, in double quotes when they hold a space, other values as JSON),
// redacted with s. A line that is not a JSON
// object is kept whole as the message.
func parseWarning(level zerolog.Level, p []byte, now time.Time, s *secret.Set) Warning {
	wa := Warning{Time: now, Level: level.String()}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var b strings.Builder
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		wa.Message, _ = s.Cut(string(bytes.TrimSpace(p)), maxWarningText)
		return wa
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := kt.(string)
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			break
		}
		var str string
		isStr := json.Unmarshal(raw, &str) == nil
		switch key {
		case zerolog.TimestampFieldName, zerolog.LevelFieldName:
			continue
		case zerolog.MessageFieldName:
			if isStr {
				wa.Message = str
				continue
			}
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(key)
		b.WriteByte('=')
		if isStr {
			// Quoted when it has spaces, not escaped: for a person to read
			// (an error quoting an intake's JSON answer stays legible).
			if strings.ContainsAny(str, " \t=") {
				str = `"` + str + `"`
			}
			b.WriteString(str)
		} else {
			b.Write(raw)
		}
	}
	// Redacted whole, then cut (secret.Set.Cut): a secret is masked even
	// when it straddles the cut.
	wa.Message, _ = s.Cut(wa.Message, maxWarningText)
	wa.Fields, _ = s.Cut(b.String(), maxWarningText)
	return wa
}

// Option is an option of Start.
type Option func(*Relay)

// WithWarnings gives Start the ring its logger writes warnings to: the
// status page shows them, redacted with the configuration's secrets.
func WithWarnings(w *Warnings) Option { return func(r *Relay) { r.warnings = w } }

// secretsOf returns the secrets of cfg and of the configurations before it
// (prev: the strings each was built from, so that an error or warning
// written before a reload that removed a key is still masked for it):
// intake keys, header values, URLs' credentials and tokens, API tokens.
func secretsOf(cfg *config.Config, prev *secretSource) (*secret.Set, *secretSource) {
	src := &secretSource{}
	if prev != nil {
		src.values = append(src.values, prev.values...)
		src.urls = append(src.urls, prev.urls...)
	}
	for _, o := range cfg.Outputs {
		src.addValue(o.IntakeKey)
		for _, v := range o.Headers {
			src.addValue(v)
		}
		src.addURL(o.URL)
	}
	for _, in := range cfg.Inputs {
		src.addValue(in.PublicToken)
		src.addValue(in.PrivateToken)
		src.addURL(in.URL)
	}
	s := &secret.Set{}
	for _, v := range src.values {
		s.Add(v)
	}
	for _, u := range src.urls {
		s.AddURL(u)
	}
	return s, src
}

// secretSource is what a secret.Set was built from.
type secretSource struct{ values, urls []string }

func (s *secretSource) addValue(v string) {
	if v != "" && !contains(s.values, v) {
		s.values = append(s.values, v)
	}
}

func (s *secretSource) addURL(u string) {
	if u != "" && !contains(s.urls, u) {
		s.urls = append(s.urls, u)
	}
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
