package http2

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
)

// expectFlood feeds what the peer wrote and checks the connection failed with
// GOAWAY(ENHANCE_YOUR_CALM) and an error wrapping ErrFlood.
func expectFlood(t *testing.T, h *serverHarness, what string) []string {
	t.Helper()
	err := h.feed()
	if !errors.Is(err, ErrFlood) || connCode(t, err) != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("%s: %v", what, err)
	}
	got := h.frames()
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "GOAWAY ") || !strings.HasSuffix(got[len(got)-1], "ENHANCE_YOUR_CALM") {
		t.Fatalf("%s: last frames %q", what, got[max(0, len(got)-3):])
	}
	return got
}

// TestRapidReset (CVE-2023-44487): streams opened and cancelled at once end the connection
// once they pass MaxPrematureResets and half of the streams; the sink saw a bounded number
// and the codec keeps no state for them.
func TestRapidReset(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	for id := uint32(1); id < 2000; id += 2 {
		h.p.headers(id, false, post("/")...)
		_ = h.p.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	expectFlood(t, h, "rapid reset")
	if n := rec.headCount(); n != 101 {
		t.Fatalf("the sink saw %d streams", n)
	}
	if len(h.s.streams) != 0 {
		t.Fatalf("%d streams kept", len(h.s.streams))
	}
	rec.release()
}

// TestCancelsWithinRatio: a client that completes most streams may cancel many.
func TestCancelsWithinRatio(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	rec.onEnd = func(id protocol.StreamID) { respond(t, h.s, id, "200", "") }
	id := uint32(1)
	for i := 0; i < 300; i++ {
		h.p.headers(id, true, get("/")...)
		h.p.headers(id+2, false, post("/")...)
		_ = h.p.fr.WriteRSTStream(id+2, http2.ErrCodeCancel)
		id += 4
	}
	h.mustFeed()
	if h.s.premature != 300 || h.s.streamsOpened != 600 {
		t.Fatalf("premature %d of %d", h.s.premature, h.s.streamsOpened)
	}
	rec.release()
}

// TestMadeYouReset (CVE-2025-8671): stream errors the client provokes count like
// premature resets.
func TestMadeYouReset(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.fr.AllowIllegalWrites = true
	for id := uint32(1); id < 1000; id += 2 {
		h.p.headers(id, false, post("/")...)
		_ = h.p.fr.WriteWindowUpdate(id, 0) // stream error PROTOCOL_ERROR
	}
	expectFlood(t, h, "provoked resets")
	rec.release()
}

func TestSettingsFlood(t *testing.T) {
	h := newServerHarness(t, Config{MaxSettingsPerSecond: 10}, newRecSink())
	for i := 0; i < 9; i++ { // 10 with the handshake's
		_ = h.p.fr.WriteSettings()
	}
	h.mustFeed()
	if got := h.frames(); len(got) != 9 {
		t.Fatalf("acks %d", len(got))
	}
	_ = h.p.fr.WriteSettings()
	expectFlood(t, h, "SETTINGS")
}

func TestPingFlood(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	for i := 0; i <= DefaultMaxPingsPerSecond; i++ {
		_ = h.p.fr.WritePing(false, [8]byte{byte(i)})
	}
	got := expectFlood(t, h, "PING")
	if len(got) != DefaultMaxPingsPerSecond+1 {
		t.Fatalf("%d frames", len(got))
	}
}

// TestControlFramesWhileNotReading: a peer that sends PINGs but does not read the acks
// (the outbound queue never empties) is cut off at MaxControlFramesQueued.
func TestControlFramesWhileNotReading(t *testing.T) {
	h := newServerHarness(t, Config{MaxPingsPerSecond: 1 << 20, MaxControlFramesQueued: 50}, newRecSink())
	h.conn.outbound = 1 << 20
	for i := 0; i < 30; i++ {
		_ = h.p.fr.WritePing(false, [8]byte{})
	}
	h.mustFeed()
	for i := 0; i < 30; i++ {
		_ = h.p.fr.WritePing(false, [8]byte{})
	}
	expectFlood(t, h, "control frames")
	// A peer that reads is never cut off.
	h2 := newServerHarness(t, Config{MaxPingsPerSecond: 1 << 20, MaxControlFramesQueued: 50}, newRecSink())
	for round := 0; round < 10; round++ {
		for i := 0; i < 30; i++ {
			_ = h2.p.fr.WritePing(false, [8]byte{})
		}
		h2.mustFeed()
	}
}

func TestEmptyFrameFloods(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	h.p.headers(1, false, post("/")...)
	h.p.data(1, false, nil)
	h.mustFeed()
	h.p.data(1, false, nil)
	expectFlood(t, h, "empty DATA")

	h2 := newServerHarness(t, Config{}, newRecSink())
	_ = h2.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h2.p.block(get("/")...)})
	_ = h2.p.fr.WriteContinuation(1, false, nil)
	_ = h2.p.fr.WriteContinuation(1, false, nil)
	expectFlood(t, h2, "empty CONTINUATION")
}

func TestPriorityFlood(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	for i := 0; i < DefaultMaxPriorityPerStream; i++ {
		_ = h.p.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 1})
	}
	h.mustFeed()
	_ = h.p.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 1})
	expectFlood(t, h, "PRIORITY")
}

func TestWindowUpdateFlood(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	for i := 0; i < 5; i++ {
		_ = h.p.fr.WriteWindowUpdate(0, 1)
	}
	h.mustFeed()
	_ = h.p.fr.WriteWindowUpdate(0, 1)
	expectFlood(t, h, "WINDOW_UPDATE")
}

// TestContinuationFlood: an endless header block is cut at MaxHeaderBlockBytes, however
// it is split, and the codec never holds more than one frame of it.
func TestContinuationFlood(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	frag := make([]byte, 16000)
	for i := range frag {
		frag[i] = 0x40 // literal with indexing, new name: never completes a field
	}
	frag[0] = 0x82 // :method GET
	_ = h.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: frag[:10]})
	total := 10
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_ = h.p.fr.WriteContinuation(1, false, frag)
		total += len(frag)
		err = h.feed()
		if len(h.pipe.pending) > frameHeaderLen+len(frag) {
			t.Fatalf("holding %d bytes", len(h.pipe.pending))
		}
	}
	if !errors.Is(err, ErrFlood) || connCode(t, err) != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("err %v", err)
	}
	if total > DefaultMaxHeaderListSize+16<<10+len(frag) {
		t.Fatalf("read %d bytes of the block before failing", total)
	}
}

// TestHPACKBomb: a large value put in the dynamic table once and referenced many times
// expands past MaxHeaderListSize: the request is answered 431, nothing past the limit is
// kept, and the HPACK state stays in step for the next request.
func TestHPACKBomb(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	big := strings.Repeat("b", 4000)
	var block []byte
	block = append(block, h.p.block(append(get("/"), "x-bomb", big)...)...) // indexed: table entry 62
	for i := 0; i < 1000; i++ {
		block = append(block, 0x80|62) // x-bomb: bbbb... again, 1 byte each
	}
	_ = h.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	h.p.headers(3, true, append(get("/after"), "x-bomb", big)...) // uses the table
	h.mustFeed()
	got := h.frames()
	if len(got) != 1 || got[0] != "HEADERS 1 end :status=431 content-length=0" {
		t.Fatalf("frames %q", got)
	}
	if rec.headCount() != 1 {
		t.Fatalf("events %d", rec.headCount())
	}
	if v, _ := rec.heads[3].Get("x-bomb"); v != big {
		t.Fatal("HPACK state lost after the refused block")
	}
	rec.release()
}

func TestHPACKTableSizeAbuse(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	// A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (4096).
	var hb []byte
	hb = append(hb, 0x3f, 0xe1, 0x3f) // size update 8192
	hb = append(hb, h.p.block(get("/")...)...)
	_ = h.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb, EndStream: true, EndHeaders: true})
	if err := h.feed(); !errors.Is(err, ErrCompression) || connCode(t, err) != http2.ErrCodeCompression {
		t.Fatalf("err %v", err)
	}
	// A string longer than MaxHeaderListSize is refused before it is buffered.
	h2 := newServerHarness(t, Config{MaxHeaderListSize: 2000}, newRecSink())
	var b2 []byte
	b2 = append(b2, 0x00, 0x7f, 0xa1, 0x9c, 0x01) // literal, new name of 20,000 bytes (announced)
	_ = h2.p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b2})
	if err := h2.feed(); connCode(t, err) != http2.ErrCodeCompression {
		t.Fatalf("long string: %v", err)
	}
}

func TestFrameTooLargeFailsAtTheHeader(t *testing.T) {
	h := newServerHarness(t, Config{}, newRecSink())
	// Only the 9-byte header of a 1 MiB frame: judged without waiting for the payload.
	h.p.wbuf.Write([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 1})
	err := h.feed()
	if !errors.Is(err, ErrFrameSize) || connCode(t, err) != http2.ErrCodeFrameSize {
		t.Fatalf("err %v", err)
	}
}

func TestStreamIDRules(t *testing.T) {
	for name, write := range map[string]func(p *peer){
		"even id":       func(p *peer) { p.headers(2, true, get("/")...) },
		"decreasing id": func(p *peer) { p.headers(5, true, get("/")...); p.headers(3, true, get("/")...) },
		"DATA on idle":  func(p *peer) { p.data(7, true, []byte("x")) },
		"RST on idle":   func(p *peer) { _ = p.fr.WriteRSTStream(9, http2.ErrCodeCancel) },
		"WINDOW_UPDATE on idle": func(p *peer) {
			_ = p.fr.WriteWindowUpdate(11, 1)
		},
	} {
		h := newServerHarness(t, Config{}, newRecSink())
		write(h.p)
		err := h.feed()
		var ce *ConnError
		if !errors.As(err, &ce) || (ce.Code != http2.ErrCodeProtocol && ce.Code != http2.ErrCodeStreamClosed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestGoAwayOnConnectionErrorResetsStreams: a connection error reports every active
// stream reset and nothing is decoded after it.
func TestGoAwayOnConnectionErrorResetsStreams(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, false, post("/")...)
	h.p.headers(3, false, post("/")...)
	_ = h.p.fr.WriteRSTStream(4, http2.ErrCodeCancel) // idle: PROTOCOL_ERROR
	h.p.headers(5, true, get("/")...)
	err := h.feed()
	if connCode(t, err) != http2.ErrCodeProtocol {
		t.Fatal(err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[GOAWAY 3 PROTOCOL_ERROR]" {
		t.Fatalf("frames %q", got)
	}
	if len(rec.resets) != 2 || rec.headCount() != 2 || !errors.Is(rec.resets[1], protocol.ErrConnection) {
		t.Fatalf("events %q", rec.events)
	}
	if err := h.s.Decode(&fakeView{buf: []byte("more")}); err == nil {
		t.Fatal("Decode after a connection error")
	}
	rec.release()
}

// TestDecodedHeadersBounded: the fields of a block are one copy in one pooled block; a
// header list at the limit decodes, one byte more is refused.
func TestDecodedHeadersBounded(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{MaxHeaderListSize: 4096}, rec)
	fields := get("/")
	size := 0
	for i := 0; i+1 < len(fields); i += 2 {
		size += len(fields[i]) + len(fields[i+1]) + 32
	}
	pad := 4096 - size - 32 - len("x-pad")
	h.p.headers(1, true, append(get("/"), "x-pad", strings.Repeat("p", pad))...)
	h.p.headers(3, true, append(get("/"), "x-pad", strings.Repeat("p", pad+1))...)
	h.mustFeed()
	if rec.headCount() != 1 || !has(h.frames(), "HEADERS 3 end :status=431") {
		t.Fatalf("events %q", rec.events)
	}
	rec.release()
}

// TestOutboundFramesWhileNotReading: a peer that opens its window one byte at a time (each
// WINDOW_UPDATE makes the codec write a 1-byte DATA frame) and does not read is cut off at
// MaxOutboundFramesQueued.
func TestOutboundFramesWhileNotReading(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{MaxOutboundFramesQueued: 100}, rec, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h.p.headers(1, true, get("/")...)
	h.mustFeed()
	_ = h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false)
	_ = h.s.EncodeData(1, [][]byte{make([]byte, 1000)}, true)
	h.conn.outbound = 1 << 20
	for i := 0; i < 60; i++ {
		_ = h.p.fr.WriteWindowUpdate(1, 1)
	}
	h.mustFeed()
	for i := 0; i < 60; i++ {
		_ = h.p.fr.WriteWindowUpdate(1, 1)
	}
	expectFlood(t, h, "outbound frames")
	rec.release()
}
