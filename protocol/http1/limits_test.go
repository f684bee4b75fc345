package http1

import (
	"errors"
	"testing"
)

func TestLimits(t *testing.T) {
	d := Limits{}.WithDefaults()
	if d != (Limits{MaxStartLine: 8 << 10, MaxHeadBytes: 60 << 10, MaxHeaders: 100, MaxChunkExtension: 1 << 10, MaxTrailerBytes: 16 << 10}) {
		t.Fatalf("defaults %+v", d)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := (Limits{MaxHeaders: 7}).WithDefaults(); got.MaxHeaders != 7 || got.MaxHeadBytes != DefaultMaxHeadBytes {
		t.Fatalf("%+v", got)
	}
	for _, l := range []Limits{
		{MaxStartLine: -1},
		{MaxHeadBytes: -1},
		{MaxHeaders: -5},
		{MaxChunkExtension: -1},
		{MaxTrailerBytes: -1},
		{MaxHeadBytes: 32 << 20},
		{MaxHeaders: 20000},
		{MaxStartLine: 100, MaxHeadBytes: 103},
		{MaxStartLine: 70 << 10}, // above the default head limit
	} {
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: %v", l, err)
		}
	}
	if err := (Limits{MaxStartLine: 100, MaxHeadBytes: 104}).Validate(); err != nil {
		t.Fatal(err)
	}
}
