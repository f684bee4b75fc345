package http2

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want protocol.Match
	}{
		{"", protocol.NeedMore},
		{"P", protocol.NeedMore},
		{"PRI * HTTP/2.0\r\n", protocol.NeedMore},
		{preface, protocol.Yes},
		{preface + "\x00\x00\x00\x04", protocol.Yes},
		{"PRI * HTTP/1.1", protocol.No},
		{"POST / HTTP/1.1\r\n", protocol.No},
		{"GET / HTTP/1.1\r\n", protocol.No},
		{"\x16\x03\x01", protocol.No},
	} {
		if got := Detect([]byte(tc.in)); got != tc.want {
			t.Errorf("Detect(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// Beside HTTP/1.1 on one port: the registry picks by the first bytes.
	reg := protocol.NewRegistry()
	if err := reg.Register(NewCodec(Config{})); err != nil {
		t.Fatal(err)
	}
	c, ok := reg.Lookup(CodecName)
	if !ok || c.NewServer == nil || c.NewClient == nil {
		t.Fatal("registry entry incomplete")
	}
	got, m, err := protocol.Detect([]byte(preface), []protocol.Codec{c})
	if err != nil || m != protocol.Yes || got.Name != "http2" {
		t.Fatalf("Detect: %v %v %v", got.Name, m, err)
	}
}

func TestConfig(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.MaxConcurrentStreams != 100 || d.InitialStreamWindow != 64<<10 || d.InitialConnWindow != 1<<20 ||
		d.MaxFrameSize != 16384 || d.MaxHeaderListSize != 60<<10 || d.HeaderTableSize != 4096 ||
		d.MaxControlFramesQueued != 1000 || d.MaxConsecutiveEmptyFrames != 1 || d.MaxPriorityPerStream != 100 ||
		d.MaxPrematureResets != 100 || d.PrematureResetMinLifetime != time.Second ||
		d.MaxHeaderBlockBytes != 60<<10+16<<10 {
		t.Fatalf("defaults %+v", d)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"window above 2^31-1":   {InitialStreamWindow: 1 << 31},
		"conn window too small": {InitialConnWindow: 1000},
		"frame size too small":  {MaxFrameSize: 1000},
		"frame size too large":  {MaxFrameSize: 1 << 24},
		"negative buffer":       {MaxStreamSendBuffer: -1},
		"conn buffer below":     {MaxStreamSendBuffer: 1 << 20, MaxConnSendBuffer: 1 << 10},
		"negative lifetime":     {PrematureResetMinLifetime: -time.Second},
		"block below list":      {MaxHeaderListSize: 8192, MaxHeaderBlockBytes: 100},
		"huge table":            {HeaderTableSize: 1 << 24},
		"huge concurrency":      {MaxConcurrentStreams: 1 << 30},
		"huge header list":      {MaxHeaderListSize: 1 << 30},
		"negative ping limit":   {MaxPingsPerSecond: -5},
		"absurd control frames": {MaxControlFramesQueued: 1 << 31},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An invalid configuration given to NewCodec falls back to the defaults.
	conn := &fakeConn{}
	s := NewCodec(Config{MaxFrameSize: 5}).NewServer(conn, newRecSink()).(*serverCodec)
	if s.cfg.MaxFrameSize != DefaultMaxFrameSize {
		t.Fatalf("MaxFrameSize %d", s.cfg.MaxFrameSize)
	}
}

func TestHeaderTableSizeSetting(t *testing.T) {
	// A larger table: the peer may grow its encoder's table once it acknowledged ours.
	rec := newRecSink()
	h := newServerHarness(t, Config{HeaderTableSize: 8192}, rec)
	h.p.enc.SetMaxDynamicTableSizeLimit(8192)
	h.p.enc.SetMaxDynamicTableSize(8192)
	for id := uint32(1); id <= 5; id += 2 {
		h.p.headers(id, true, append(get("/"), "x-v", strings.Repeat("v", 3000))...)
	}
	h.mustFeed()
	if rec.headCount() != 3 {
		t.Fatalf("events %d", rec.headCount())
	}
	rec.release()
	// A smaller table: a peer that uses more after acknowledging is a compression error.
	h2 := newServerHarness(t, Config{HeaderTableSize: 1024}, newRecSink())
	h2.p.enc.SetMaxDynamicTableSize(4096)
	h2.p.wbuf.Reset()
	var hb []byte
	hb = append(hb, 0x3f, 0xe1, 0x1f) // table size update 4096 > 1024
	hb = append(hb, h2.p.block(get("/")...)...)
	_ = h2.p.fr.WriteHeaders(http2HeadersParam(1, hb))
	if err := h2.feed(); !errors.Is(err, ErrCompression) {
		t.Fatalf("err %v", err)
	}
}
