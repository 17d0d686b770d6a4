package config

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse measures a full check of the two samples: decoding,
// defaults, validation (full.yaml loads two certificates and a CA).
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"minimal.yaml", "full.yaml"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			writeCert(b, dir)
			if err := os.Mkdir(filepath.Join(dir, "spool"), 0o700); err != nil {
				b.Fatal(err)
			}
			env := map[string]string{"DTRELAY_TEST_DIR": dir, "SEKOIA_INTAKE_KEY": "sekoia-intake-key-0123456789",
				"DT_PUBLIC_TOKEN": "p", "DT_PRIVATE_TOKEN": "q", "ARCHIVE_TOKEN": "a"}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			file := filepath.Join(testdataDir, name)
			data, err := os.ReadFile(file)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parse(data, file, lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
