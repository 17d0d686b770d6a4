package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestdata parses every sample under testdata/config: the problems and
// warnings must be exactly those its "# want" and "# warn" comments expect,
// on their lines; a sample without "# want" must be valid.
func TestTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", testdataDir, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			testEnv(t)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			exps := expectations(t, data)
			invalid := strings.HasPrefix(filepath.Base(file), "invalid_")
			cfg, warnings, err := Load(file)
			ps := problems(t, err)
			switch {
			case invalid && err == nil:
				t.Fatal("an invalid_ sample parsed without error")
			case !invalid && err != nil:
				t.Fatalf("a valid sample does not parse:\n%v", err)
			case (cfg == nil) != invalid:
				t.Fatalf("config %v with error %v", cfg, err)
			}
			for _, p := range ps {
				if p.File != file {
					t.Errorf("problem names file %q, want %q", p.File, file)
				}
			}
			checkExpectations(t, exps, ps, warnings)
		})
	}
}
