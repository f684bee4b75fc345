package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the bootstrap parser: it must never panic, every error
// must be one of the package's located errors, and whatever it accepts must validate.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("{}"))
	f.Add([]byte(`{"static_resources":{"clusters":[{"name":"c","type":"STRICT_DNS","lb_policy":"MAGLEV"}]}}`))
	f.Add([]byte("a: &a [*a, *a]\n"))
	reg := testRegistry(f)
	sentinels := []error{ErrUnknownField, ErrUnsupported, ErrInvalid, ErrUnknownFilter, ErrUnknownType,
		ErrDanglingCluster, ErrDuplicate, ErrRead}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data, reg)
		if err != nil {
			if s != nil {
				t.Fatal("a snapshot returned with an error")
			}
			for _, part := range flatten(err) {
				if !strings.HasPrefix(part.Error(), "fuzz.yaml: ") {
					t.Fatalf("error does not name the file: %q", part)
				}
				known := false
				for _, s := range sentinels {
					known = known || errors.Is(part, s)
				}
				var fe *FieldError
				if !known && !errors.As(part, &fe) {
					t.Fatalf("error matches no sentinel: %q", part)
				}
			}
			return
		}
		for _, l := range s.Listeners {
			if err := l.Validate(); err != nil {
				t.Fatalf("accepted listener does not validate: %v", err)
			}
		}
		for _, c := range s.Clusters {
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted cluster does not validate: %v", err)
			}
		}
		if err := s.Runtime.Validate(); err != nil {
			t.Fatalf("accepted runtime does not validate: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/valid-clusters.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := testRegistry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("valid-clusters.yaml", data, reg); err != nil {
			b.Fatal(err)
		}
	}
}
