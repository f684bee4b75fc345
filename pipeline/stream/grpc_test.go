package stream

import (
	"math"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
)

func TestGRPCRequestAndTimeout(t *testing.T) {
	for _, c := range []struct {
		ct   string
		want bool
	}{
		{"application/grpc", true}, {"application/grpc+proto", true}, {"Application/GRPC;charset=utf-8", true},
		{"application/grpc-web", false}, {"application/json", false}, {"", false}, {"application/grp", false},
	} {
		h := protocol.NewHeaderList("content-type", c.ct)
		if c.ct == "" {
			h = protocol.NewHeaderList()
		}
		if got := isGRPC(h); got != c.want {
			t.Errorf("isGRPC(content-type %q) = %v", c.ct, got)
		}
	}
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"1H", time.Hour, true}, {"2M", 2 * time.Minute, true}, {"3S", 3 * time.Second, true},
		{"200m", 200 * time.Millisecond, true}, {"299987u", 299987 * time.Microsecond, true},
		{"99999999n", 99999999, true}, {"0m", 0, true}, {"99999999H", math.MaxInt64, true},
		{"", 0, false}, {"m", 0, false}, {"123456789m", 0, false}, {"10s", 0, false},
		{"+1m", 0, false}, {"-1m", 0, false}, {"1.5S", 0, false}, {"1 m", 0, false},
	} {
		d, ok := grpcTimeout(protocol.NewHeaderList("grpc-timeout", c.v))
		if d != c.want || ok != c.ok {
			t.Errorf("grpcTimeout(%q) = %v, %v; want %v, %v", c.v, d, ok, c.want, c.ok)
		}
	}
}

func TestGRPCStatusAndMessage(t *testing.T) {
	for status, want := range map[int]int{400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14, 500: 2, 200: 2} {
		if got := grpcStatusFor(status); got != want {
			t.Errorf("HTTP %d maps to gRPC %d, want %d", status, got, want)
		}
	}
	for in, want := range map[string]string{
		"upstream connect error\n": "upstream connect error",
		"100% done":                "100%25 done",
		"caf\u00e9\r\n":            "caf%C3%A9",
		"tab\there":                "tab%09here",
		"":                         "",
	} {
		if got := grpcMessage(in); got != want {
			t.Errorf("grpcMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzGRPCTimeout: any header value parses without a panic, and what parses is never a
// negative duration (an overflow would make every call look expired).
func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1H", "200m", "299987u", "99999999n", "", "m", "+1m", "-1S", "1e3m", "99999999H"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := grpcTimeout(protocol.NewHeaderList("grpc-timeout", v))
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("grpc-timeout %q parsed as %v", v, d)
		}
	})
}
