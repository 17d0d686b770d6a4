package relay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
)

// The ring keeps the last MaxWarnings events at warn level or above, the
// latest first, with their fields; debug and info lines are not kept; a
// secret is masked, also one configured after the line was written.
func TestWarningsRing(t *testing.T) {
	w := NewWarnings()
	log := zerolog.New(zerolog.MultiLevelWriter(w)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	const early, late = "early-secret-key-1234", "late-secret-key-5678"
	cfg := &config.Config{Outputs: []config.Output{{Name: "s", IntakeKey: early}}}
	s, _ := secretsOf(cfg, nil)
	w.setSecrets(s)
	for i := range 15 {
		log.Info().Int("i", i).Msg("info line")
		log.Debug().Msg("debug line")
		ev := log.Warn()
		if i%2 == 1 {
			ev = log.Error()
		}
		ev.Int("i", i).Str("error", "intake says "+early+" and "+late).Msg(fmt.Sprintf("warning %d", i))
	}
	cfg.Outputs = append(cfg.Outputs, config.Output{Name: "t", IntakeKey: late})
	s, _ = secretsOf(cfg, nil)
	w.setSecrets(s)
	got, total := w.Last()
	if total != 15 || len(got) != MaxWarnings {
		t.Fatalf("total %d, %d kept; want 15, %d", total, len(got), MaxWarnings)
	}
	for j, x := range got {
		i := 14 - j
		lvl := "warn"
		if i%2 == 1 {
			lvl = "error"
		}
		want := fmt.Sprintf(`i=%d error="intake says [redacted] and [redacted]"`, i)
		if x.Message != fmt.Sprintf("warning %d", i) || x.Level != lvl || x.Fields != want {
			t.Errorf("warning %d = %+v, want message %q, level %s, fields %s", j, x, fmt.Sprintf("warning %d", i), lvl, want)
		}
		if time.Since(x.Time) > time.Minute || x.Time.After(time.Now()) {
			t.Errorf("warning %d time %v", j, x.Time)
		}
	}
	for _, x := range got {
		if strings.Contains(x.Message+x.Fields, "secret-key") {
			t.Errorf("secret shown: %+v", x)
		}
	}
	// A line that is not JSON is kept whole as the message.
	_, _ = w.WriteLevel(zerolog.WarnLevel, []byte("plain text "+early+"\n"))
	if got, _ := w.Last(); got[0].Message != "plain text [redacted]" {
		t.Errorf("plain line kept as %+v", got[0])
	}
}

// secretsOf masks the intake keys, header values, API tokens and URL
// tokens of a configuration, and keeps those of the configurations before
// it (a reload that removes a key).
func TestSecretsOf(t *testing.T) {
	cfg := &config.Config{
		Outputs: []config.Output{
			{Name: "a", IntakeKey: "key-aaaa-1111"},
			{Name: "b", URL: "https://hook.example/v1/noformat/Tok3n0123456789abcdef", Headers: map[string]string{"Authorization": "Bearer tok-bbbb-2222"}},
		},
		Inputs: []config.Input{{Name: "api", PublicToken: "pub-cccc-3333", PrivateToken: "priv-dddd-4444", URL: "https://dt.example/?token=qqqq-5555"}},
	}
	s, src := secretsOf(cfg, nil)
	text := "key-aaaa-1111 Tok3n0123456789abcdef tok-bbbb-2222 pub-cccc-3333 priv-dddd-4444 qqqq-5555"
	if got := s.Redact(text); strings.Trim(strings.ReplaceAll(got, "[redacted]", ""), " ") != "" {
		t.Errorf("Redact(%q) = %q", text, got)
	}
	next, _ := secretsOf(&config.Config{}, src)
	if got := next.Redact("old key-aaaa-1111"); got != "old [redacted]" {
		t.Errorf("after a reload without it: %q", got)
	}
}

// The rate of an input is the difference of its total between now and the
// sample about RateWindow old, per second.
func TestRateSampler(t *testing.T) {
	var r rateSampler
	t0 := time.Now()
	if v, span := r.rate("in", 5, t0); v != 0 || span != 0 {
		t.Errorf("no samples: %v over %v s", v, span)
	}
	for i := 0; i <= 20; i++ {
		r.add(t0.Add(time.Duration(i)*time.Second), map[string]uint64{"in": uint64(100 * i)})
	}
	now := t0.Add(20 * time.Second)
	v, span := r.rate("in", 2000, now)
	if span != 10 || v != 100 {
		t.Errorf("rate = %v over %v s, want 100 over 10", v, span)
	}
	// An input added since the samples: all it received is recent.
	if v, _ := r.rate("new", 50, now); v != 5 {
		t.Errorf("new input: %v/s, want 5", v)
	}
}
