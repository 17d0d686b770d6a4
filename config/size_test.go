package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	f := func(in string, want Size, wantErr string) {
		t.Helper()
		got, err := ParseSize(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("0", 0, "")
	f("1024", 1024, "")
	f("1024B", 1024, "")
	f("256KiB", 256<<10, "")
	f("256kib", 256<<10, "")
	f("10MiB", 10<<20, "")
	f("10 MiB", 10<<20, "")
	f(" 10GiB ", 10<<30, "")
	f("2TiB", 2<<40, "")
	f("4MB", 4_000_000, "")
	f("1KB", 1000, "")
	f("1kB", 1000, "")
	f("3GB", 3_000_000_000, "")
	f("1TB", 1_000_000_000_000, "")
	f("1.5KiB", 1536, "")
	f("0.5MB", 500_000, "")
	f("1.1MB", 1_100_000, "")
	f("8388607TiB", 8388607<<40, "")

	f("", 0, "want a number")
	f("KiB", 0, "want a number")
	f("1.", 0, "want a number")
	f(".5KiB", 0, "want a number")
	f("1.2.3", 0, "want a number")
	f("1e3", 0, "unknown unit \"e3\"")
	f("0x10", 0, "unknown unit")
	f("10 M", 0, "unknown unit \"M\"")
	f("10k", 0, "unknown unit")
	f("-1", 0, "must not be negative")
	f("-1KiB", 0, "must not be negative")
	f("1.5B", 0, "not a whole number of bytes")
	f("0.0001KB", 0, "not a whole number of bytes")
	f("8388608TiB", 0, "too large")
	f("99999999999999999999", 0, "too large")
}

func TestSizeString(t *testing.T) {
	f := func(s Size, want string) {
		t.Helper()
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
		if back, err := ParseSize(want); err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", want, back, err, int64(s))
		}
	}
	f(0, "0")
	f(1, "1")
	f(1000, "1KB")
	f(1024, "1KiB")
	f(256*KiB, "256KiB")
	f(4*MiB, "4MiB")
	f(4_000_000, "4MB")
	f(10*GiB, "10GiB")
	f(3*TiB, "3TiB")
	f(1536, "1536")
	f(1_024_000, "1000KiB")
}

func TestSizeUnmarshal(t *testing.T) {
	var v struct {
		A Size `yaml:"a"`
		B Size `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 256KiB\nb: 1024\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 256*KiB || v.B != 1024 {
		t.Fatalf("got %d, %d", v.A, v.B)
	}
	if err := yaml.Unmarshal([]byte("a: 12 parsecs\n"), &v); err == nil {
		t.Fatal("want an error for an unknown unit")
	}
	if err := yaml.Unmarshal([]byte("a: [1]\n"), &v); err == nil {
		t.Fatal("want an error for a list")
	}
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration, wantErr string) {
		t.Helper()
		got, err := parseDuration(in)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("parseDuration(%q) = %v, %v; want error containing %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("5s", 5*time.Second, "")
	f("1m30s", 90*time.Second, "")
	f("250ms", 250*time.Millisecond, "")
	f("0", 0, "")
	f("0s", 0, "")
	f("2h", 2*time.Hour, "")
	f("60", 0, "want a duration")
	f("5 minutes", 0, "want a duration")
	f("", 0, "want a duration")
	f("-1s", 0, "must not be negative")
}

func TestFormatDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	f(0, "0s")
	f(5*time.Minute, "5m")
	f(time.Hour, "1h")
	f(90*time.Second, "1m30s")
	f(250*time.Millisecond, "250ms")
	f(time.Hour+time.Second, "1h0m1s")
}
