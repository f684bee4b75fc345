package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

func TestNewCodecDetect(t *testing.T) {
	c := NewCodec(Limits{}, CodecOptions{})
	if c.Name != "bolt" || c.NewServer == nil || c.NewClient == nil {
		t.Fatalf("codec entry %+v", c)
	}
	req := request(1, "com.Foo", "x").bytes(t)
	cases := []struct {
		in   []byte
		want protocol.Match
	}{
		{nil, protocol.NeedMore},
		{req[:1], protocol.NeedMore},
		{req[:3], protocol.NeedMore},
		{req[:4], protocol.Yes},
		{AppendHeartbeat(nil, 1), protocol.Yes},
		{[]byte("GET / HTTP/1.1\r\n"), protocol.No},
		{[]byte("PRI * HTTP/2.0\r\n"), protocol.No},
		{[]byte{0xda, 0xbb, 0xc2, 0x00}, protocol.No}, // dubbo
		{[]byte{0x01, 0x05}, protocol.No},             // unknown type
		{[]byte{0x01, 0x02, 0x00, 0x00}, protocol.No}, // oneway heartbeat
	}
	for _, tc := range cases {
		if got := c.Detect(tc.in); got != tc.want {
			t.Errorf("Detect(%x) = %v, want %v", tc.in, got, tc.want)
		}
	}
	reg := protocol.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	if _, m, err := protocol.Detect(req[:8], []protocol.Codec{c}); err != nil || m != protocol.Yes {
		t.Fatalf("protocol.Detect = %v, %v", m, err)
	}
}

func TestCodecOptionsValidate(t *testing.T) {
	if err := (CodecOptions{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (CodecOptions{MaxStreams: -1}).Validate(); !errors.Is(err, ErrBadLimits) {
		t.Fatalf("negative MaxStreams: %v", err)
	}
	d := CodecOptions{}.WithDefaults()
	if d.MaxStreams != 1024 || d.MaxQueuedBytes != 4<<20 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestServerRequestThenResponseInOneWritev(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	sink.keepHeads = true
	req := request(42, "com.alipay.Echo", "hello", "service", "com.alipay.Echo:1.0", "k", "v1", "k", "v2").bytes(t)
	if err := s.Decode(&fakeView{b: req}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`headers(42,[{:path com.alipay.Echo} {service com.alipay.Echo:1.0} {k v1} {k v2}],end=false)`,
		`data(42,"hello",end=true)`,
	}
	if got := merged(sink.events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	h := sink.heads[42]
	if v := get(t, h, "k"); v != "v2" {
		t.Fatalf("Get(k) = %q, want the last duplicate", v)
	}
	bh := h.(*Headers)
	if bh.Kind() != KindRequest || bh.Timeout() != 3000 || bh.ContentLength() != 5 || bh.RequestID() != 42 {
		t.Fatalf("raw fields: kind %v timeout %d content %d id %d", bh.Kind(), bh.Timeout(), bh.ContentLength(), bh.RequestID())
	}
	h.Release()

	// The upstream's response, as the client codec reports it.
	resp := response(7, StatusSuccess, "java.lang.String", "world", "rk", "rv").bytes(t)
	rh := headersOf(t, resp)
	if err := s.EncodeHeaders(42, rh, false); err != nil {
		t.Fatal(err)
	}
	rh.Release()
	if c.ops != 0 {
		t.Fatalf("the head was written alone (%d writes) although content follows", c.ops)
	}
	if err := s.EncodeData(42, [][]byte{[]byte("wor"), []byte("ld")}, true); err != nil {
		t.Fatal(err)
	}
	if c.ops != 1 {
		t.Fatalf("%d writes for head and content, want one writev", c.ops)
	}
	got := frames(t, c.wire.Bytes())
	wantMsg := msg{kind: KindResponse, id: 42, codec: 1, version: 1, status: StatusSuccess, class: "java.lang.String",
		header: []string{"rk=rv"}, content: "world"}
	if len(got) != 1 || !reflect.DeepEqual(got[0], wantMsg) {
		t.Fatalf("wire %+v\nwant %+v", got, wantMsg)
	}
	// Apart from the request id the bytes are the upstream's.
	out := bytes.Clone(c.wire.Bytes())
	if err := SetRequestID(out, 7); err != nil || !bytes.Equal(out, resp) {
		t.Fatalf("response not forwarded faithfully:\n got %x\nwant %x", out, resp)
	}
	if len(s.streams) != 0 {
		t.Fatalf("streams left: %v", s.streams)
	}
}

func TestServerMultiplexOutOfOrder(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	in := cat2(request(1, "a", "one").bytes(t), request(2, "b", "").bytes(t), request(3, "c", "three").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.streams); n != 3 {
		t.Fatalf("%d streams in flight, want 3 (events %v)", n, sink.events)
	}
	for _, id := range []uint32{3, 1, 2} {
		body := "resp-" + strconv.Itoa(int(id))
		rh := headersOf(t, response(900+id, StatusSuccess, "", body).bytes(t))
		if err := s.EncodeHeaders(uint64(id), rh, false); err != nil {
			t.Fatal(err)
		}
		rh.Release()
		if err := s.EncodeData(uint64(id), [][]byte{[]byte(body)}, true); err != nil {
			t.Fatal(err)
		}
	}
	got := frames(t, c.wire.Bytes())
	if !reflect.DeepEqual(ids(got), []uint32{3, 1, 2}) {
		t.Fatalf("wire ids %v", ids(got))
	}
	for _, m := range got {
		if m.content != "resp-"+strconv.Itoa(int(m.id)) {
			t.Fatalf("frame %d carries %q", m.id, m.content)
		}
	}
}

// A response frame whose content arrives in pieces keeps the wire: other responses, status
// answers and heartbeat acks wait until its last byte was written.
func TestServerFramesStayContiguous(t *testing.T) {
	s, c, _ := newServer(CodecOptions{})
	in := cat2(request(1, "a", "").bytes(t), request(2, "b", "").bytes(t), request(3, "c", "").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("A", 1000)
	ha := headersOf(t, response(0, StatusSuccess, "", big).bytes(t))
	if err := s.EncodeHeaders(1, ha, false); err != nil {
		t.Fatal(err)
	}
	ha.Release()
	if err := s.EncodeData(1, [][]byte{[]byte(big[:300])}, false); err != nil {
		t.Fatal(err)
	}
	// Stream 2 answered in full while 1 is half written; then a heartbeat; then a local reply.
	hb := headersOf(t, response(0, StatusSuccess, "", "BB").bytes(t))
	if err := s.EncodeHeaders(2, hb, false); err != nil {
		t.Fatal(err)
	}
	hb.Release()
	if err := s.EncodeData(2, [][]byte{[]byte("BB")}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Decode(&fakeView{b: AppendHeartbeat(nil, 77)}); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(3, protocol.NewHeaderList(":status", "503"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFrames(c.wire.Bytes()); err == nil {
		t.Fatalf("frame 1 should still be incomplete on the wire")
	}
	if err := s.EncodeData(1, [][]byte{[]byte(big[300:])}, true); err != nil {
		t.Fatal(err)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 4 || got[0].id != 1 || got[0].content != big {
		t.Fatalf("wire %+v", got)
	}
	rest := map[uint32]msg{}
	for _, m := range got[1:] {
		rest[m.id] = m
	}
	if m := rest[2]; m.content != "BB" || m.kind != KindResponse {
		t.Fatalf("response 2: %+v", m)
	}
	if m := rest[77]; m.kind != KindHeartbeatAck {
		t.Fatalf("heartbeat ack: %+v", m)
	}
	if m := rest[3]; m.status != StatusServerThreadpoolBusy {
		t.Fatalf("local reply: %+v", m)
	}
	if s.w.queued != 0 || len(s.w.frames) != 0 || s.w.open {
		t.Fatalf("writer not idle: queued %d frames %d open %v", s.w.queued, len(s.w.frames), s.w.open)
	}
}

func TestServerHeartbeatAnsweredLocally(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	in := cat2(AppendHeartbeat(nil, 5), request(6, "svc", "x").bytes(t), AppendHeartbeat(nil, 7))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	for _, e := range sink.events {
		if e.id == 5 || e.id == 7 {
			t.Fatalf("heartbeat reached the sink: %v", e)
		}
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 2 || got[0].kind != KindHeartbeatAck || got[0].id != 5 || got[1].id != 7 || got[1].kind != KindHeartbeatAck {
		t.Fatalf("wire %+v", got)
	}
	if want := AppendHeartbeatAck(AppendHeartbeatAck(nil, 5), 7); !bytes.Equal(c.wire.Bytes(), want) {
		t.Fatalf("acks are not sofa-bolt's bytes")
	}
}

func TestServerOnewayWritesNothing(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	in := cat2(oneway(9, "svc", "fire").bytes(t), oneway(10, "svc", "").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	want := []string{`headers(9,[{:path svc}],end=false)`, `data(9,"fire",end=true)`, `headers(10,[{:path svc}],end=true)`}
	if got := merged(sink.events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q", got)
	}
	// A synthetic 200 from the upstream side, and a local reply: nothing goes to the client.
	if err := s.EncodeHeaders(9, newSyntheticResponse(StatusSuccess), true); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeHeaders(10, protocol.NewHeaderList(":status", "404", "content-length", "3"), false); err != nil {
		t.Fatal(err)
	}
	if err := s.EncodeData(10, [][]byte{[]byte("nop")}, true); err != nil {
		t.Fatal(err)
	}
	if c.wire.Len() != 0 || len(s.streams) != 0 {
		t.Fatalf("wrote %x for oneways; %d streams left", c.wire.Bytes(), len(s.streams))
	}
}

func TestServerLocalRepliesMapToBoltStatus(t *testing.T) {
	cases := []struct {
		code int
		want Status
	}{
		{200, StatusSuccess}, {204, StatusSuccess}, {404, StatusNoProcessor}, {503, StatusServerThreadpoolBusy},
		{429, StatusServerThreadpoolBusy}, {504, StatusTimeout}, {408, StatusTimeout}, {400, StatusCodecException},
		{500, StatusServerException}, {502, StatusServerException}, {403, StatusServerException},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			s, c, _ := newServer(CodecOptions{})
			f := request(11, "svc", "")
			f.codec = 11 // echoed in the answer
			if err := s.Decode(&fakeView{b: f.bytes(t)}); err != nil {
				t.Fatal(err)
			}
			body := "local reply body\n"
			h := protocol.NewHeaderList(":status", strconv.Itoa(tc.code), "content-length", strconv.Itoa(len(body)), "content-type", "text/plain")
			if err := s.EncodeHeaders(11, h, false); err != nil {
				t.Fatal(err)
			}
			if err := s.EncodeData(11, [][]byte{[]byte(body)}, true); err != nil {
				t.Fatal(err)
			}
			got := frames(t, c.wire.Bytes())
			want := msg{kind: KindResponse, id: 11, codec: 11, version: 1, status: tc.want}
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("wire %+v, want %+v", got, want)
			}
			if c.ops != 1 || len(s.streams) != 0 {
				t.Fatalf("%d writes, %d streams left", c.ops, len(s.streams))
			}
		})
	}
}

func TestServerDuplicateIDAnsweredWithCodecException(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	in := cat2(request(5, "first", "aaa").bytes(t), request(5, "second", "bbbbbb").bytes(t),
		oneway(5, "third", "cc").bytes(t), request(6, "next", "dd").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`headers(5,[{:path first}],end=false)`, `data(5,"aaa",end=true)`,
		`headers(6,[{:path next}],end=false)`, `data(6,"dd",end=true)`,
	}
	if got := merged(sink.events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q", got)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 1 || got[0].id != 5 || got[0].status != StatusCodecException {
		t.Fatalf("wire %+v", got)
	}
	// Once 5 is answered, the id may be used again.
	if err := s.EncodeHeaders(5, protocol.NewHeaderList(":status", "200"), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Decode(&fakeView{b: request(5, "again", "").bytes(t)}); err != nil {
		t.Fatal(err)
	}
	if e := sink.events[len(sink.events)-1]; e.kind != "headers" || e.id != 5 {
		t.Fatalf("reused id not reported: %v", e)
	}
}

func TestServerMaxStreamsAnswersBusy(t *testing.T) {
	s, c, sink := newServer(CodecOptions{MaxStreams: 2})
	in := cat2(request(1, "a", "").bytes(t), request(2, "b", "").bytes(t), request(3, "c", "xyz").bytes(t),
		oneway(4, "d", "").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	if len(sink.events) != 2 {
		t.Fatalf("events %v", sink.events)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 1 || got[0].id != 3 || got[0].status != StatusServerThreadpoolBusy {
		t.Fatalf("wire %+v", got)
	}
}

func TestServerBadHeaderIsAStreamError(t *testing.T) {
	s, c, sink := newServer(CodecOptions{})
	bad := request(8, "svc", "content").bytes(t)
	// Corrupt the header map: a key length past the block.
	hdrStart := RequestHeadLen + len("svc")
	bad = append(bad[:hdrStart:hdrStart], cat2(be32(100), []byte("kk"), []byte("content"))...)
	bad[17] = 6 // headerLen: 4 + 2
	in := cat2(bad, request(9, "ok", "fine").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	want := []string{`headers(9,[{:path ok}],end=false)`, `data(9,"fine",end=true)`}
	if got := merged(sink.events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q", got)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 1 || got[0].id != 8 || got[0].status != StatusCodecException {
		t.Fatalf("wire %+v", got)
	}
}

func TestServerHostileFramesCloseTheConnection(t *testing.T) {
	good := request(1, "svc", "x").bytes(t)
	tooLong := request(2, "svc", "").bytes(t)
	tooLong[18], tooLong[19], tooLong[20], tooLong[21] = 0x01, 0x00, 0x00, 0x01 // 16 MiB + 1
	negative := request(3, "svc", "").bytes(t)
	negative[18] = 0x80
	bigClass := request(4, "svc", "").bytes(t)
	bigClass[14], bigClass[15] = 0x10, 0x00 // 4 KiB class name, limit 1 KiB
	badHeaderLen := request(5, "svc", "").bytes(t)
	badHeaderLen[16] = 0x80
	cases := map[string][]byte{
		"bad magic":          cat2([]byte{0x02}, good[1:]),
		"http":               []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"unknown type":       cat2(good[:1], []byte{0x07}, good[2:]),
		"oneway heartbeat":   cat2(good[:1], []byte{TypeOneway, 0, 0}, good[4:]),
		"unknown cmd":        cat2(good[:2], []byte{0, 9}, good[4:]),
		"content past limit": tooLong,
		"negative content":   negative,
		"class past limit":   bigClass,
		"header len signed":  badHeaderLen,
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			s, _, sink := newServer(CodecOptions{})
			in := cat2(good, frame, good)
			err := s.Decode(&fakeView{b: in})
			if !isConnErr(err) {
				t.Fatalf("Decode = %v, want a connection error", err)
			}
			if n := len(sink.events); n != 2 { // the good request before, nothing after
				t.Fatalf("events %v", sink.events)
			}
			if err2 := s.Decode(&fakeView{b: good}); !isConnErr(err2) {
				t.Fatalf("Decode after the error = %v", err2)
			}
			if n := len(sink.events); n != 2 {
				t.Fatalf("events after the error: %v", sink.events)
			}
		})
	}
}

func TestServerTruncatedFrameWaits(t *testing.T) {
	frame := request(1, "svc", "content", "k", "v").bytes(t)
	headEnd := RequestHeadLen + 3 + 4 + 1 + 4 + 1
	for cut := 1; cut < len(frame); cut++ {
		s, _, sink := newServer(CodecOptions{})
		v := &fakeView{b: frame[:cut]}
		if err := s.Decode(v); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		switch {
		case cut < headEnd:
			if len(sink.events) != 0 || v.Len() != cut {
				t.Fatalf("cut %d: events %v, %d left", cut, sink.events, v.Len())
			}
		default:
			// The head was reported as soon as it was complete; the content so far passed.
			if len(sink.events) == 0 || sink.events[0].kind != "headers" || v.Len() != 0 {
				t.Fatalf("cut %d: events %v, %d left", cut, sink.events, v.Len())
			}
		}
	}
}

// Every split of a stream of frames into two reads, and a byte-at-a-time feed, gives the same
// events and the same bytes on the wire as one read.
func TestServerSplitAtEveryBoundary(t *testing.T) {
	bad := request(30, "svc", "zz").bytes(t)
	hdrStart := RequestHeadLen + 3
	bad = append(bad[:hdrStart:hdrStart], cat2(be32(-2), []byte("zz"))...)
	bad[17] = 4
	stream := cat2(
		request(1, "com.Svc", strings.Repeat("a", 50), "k", "v").bytes(t),
		AppendHeartbeat(nil, 2),
		oneway(3, "com.One", "0123456789").bytes(t),
		request(4, "", "").bytes(t),
		bad,
		request(1, "dup", "dupdup").bytes(t),
		request(5, "com.Last", "tail", "a", "b", "c", "d").bytes(t),
	)
	run := func(chunks [][]byte) ([]string, []byte) {
		s, c, sink := newServer(CodecOptions{})
		sink.onHeaders = func(id uint64, h protocol.Headers, end bool) {
			if id == 4 { // answered at once, inside OnHeaders, like a local reply
				if err := s.EncodeHeaders(id, protocol.NewHeaderList(":status", "404"), true); err != nil {
					t.Fatal(err)
				}
			}
		}
		fd := &feeder{decode: s.Decode}
		for _, ch := range chunks {
			if err := fd.feed(ch); err != nil {
				t.Fatal(err)
			}
		}
		if len(fd.pending) != 0 {
			t.Fatalf("%d bytes left unconsumed", len(fd.pending))
		}
		return merged(sink.events), bytes.Clone(c.wire.Bytes())
	}
	wantEv, wantWire := run([][]byte{stream})
	if len(wantEv) != 7 { // the duplicate of the unanswered request 1 is refused
		t.Fatalf("reference events %q", wantEv)
	}
	answers := frames(t, wantWire)
	if len(answers) != 4 || answers[0].kind != KindHeartbeatAck || answers[0].id != 2 ||
		answers[1].id != 4 || answers[1].status != StatusNoProcessor ||
		answers[2].id != 30 || answers[2].status != StatusCodecException ||
		answers[3].id != 1 || answers[3].status != StatusCodecException {
		t.Fatalf("reference wire %+v", answers)
	}
	for i := 0; i <= len(stream); i++ {
		ev, wire := run([][]byte{stream[:i], stream[i:]})
		if !reflect.DeepEqual(ev, wantEv) || !bytes.Equal(wire, wantWire) {
			t.Fatalf("split at %d:\n got %q\nwant %q\nwire %x\nwant %x", i, ev, wantEv, wire, wantWire)
		}
	}
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	if ev, wire := run(bytewise); !reflect.DeepEqual(ev, wantEv) || !bytes.Equal(wire, wantWire) {
		t.Fatalf("byte at a time:\n got %q\nwant %q", ev, wantEv)
	}
}

// Content is never buffered by the codec: a large frame's content is offered as it arrives,
// and nothing but an incomplete head part is ever left unconsumed.
func TestServerStreamsLargeContent(t *testing.T) {
	s, _, sink := newServer(CodecOptions{})
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	frame := request(1, "svc", string(content)).bytes(t)
	fd := &feeder{decode: s.Decode}
	for off := 0; off < len(frame); off += 16 << 10 {
		if err := fd.feed(frame[off:min(off+16<<10, len(frame))]); err != nil {
			t.Fatal(err)
		}
		if len(fd.pending) != 0 {
			t.Fatalf("%d bytes held back at offset %d", len(fd.pending), off)
		}
	}
	var got []byte
	for _, e := range sink.events[1:] {
		got = append(got, e.data...)
	}
	if !bytes.Equal(got, content) || !sink.events[len(sink.events)-1].end {
		t.Fatalf("content: %d bytes of %d", len(got), len(content))
	}
	if len(sink.events) < 60 {
		t.Fatalf("only %d events: content was not streamed", len(sink.events))
	}
}

func TestServerReset(t *testing.T) {
	setup := func(t *testing.T) (*serverCodec, *fakeConn) {
		s, c, _ := newServer(CodecOptions{})
		in := cat2(request(1, "a", "").bytes(t), request(2, "b", "").bytes(t), request(3, "c", "").bytes(t),
			oneway(4, "d", "").bytes(t))
		if err := s.Decode(&fakeView{b: in}); err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	t.Run("nothing sent", func(t *testing.T) {
		s, c := setup(t)
		s.Reset(1, errors.New("upstream reset"))
		s.Reset(2, &protocol.StreamError{ID: 2, Code: uint32(StatusTimeout), Err: errors.New("t")})
		s.Reset(4, errors.New("oneway"))
		s.Reset(99, errors.New("unknown"))
		got := frames(t, c.wire.Bytes())
		if len(got) != 2 || got[0].status != StatusServerException || got[1].status != StatusTimeout || got[1].id != 2 {
			t.Fatalf("wire %+v", got)
		}
		if len(s.streams) != 1 || c.closed {
			t.Fatalf("streams %v, closed %v", s.streams, c.closed)
		}
	})
	t.Run("held head replaced", func(t *testing.T) {
		s, c := setup(t)
		h := headersOf(t, response(0, StatusSuccess, "", "never").bytes(t))
		if err := s.EncodeHeaders(3, h, false); err != nil {
			t.Fatal(err)
		}
		h.Release()
		s.Reset(3, errors.New("upstream gone"))
		got := frames(t, c.wire.Bytes())
		if len(got) != 1 || got[0].id != 3 || got[0].status != StatusServerException || c.closed {
			t.Fatalf("wire %+v closed %v", got, c.closed)
		}
		if len(s.w.frames) != 0 {
			t.Fatalf("held head kept")
		}
	})
	t.Run("mid frame closes", func(t *testing.T) {
		s, c := setup(t)
		h := headersOf(t, response(0, StatusSuccess, "", "0123456789").bytes(t))
		if err := s.EncodeHeaders(3, h, false); err != nil {
			t.Fatal(err)
		}
		h.Release()
		if err := s.EncodeData(3, [][]byte{[]byte("01234")}, false); err != nil {
			t.Fatal(err)
		}
		s.Reset(3, errors.New("upstream gone"))
		if !c.closed || !isConnErr(c.reason) {
			t.Fatalf("closed %v reason %v", c.closed, c.reason)
		}
		if err := s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), true); !isConnErr(err) {
			t.Fatalf("encoding after the break: %v", err)
		}
	})
}

func TestServerContentLongerThanAnnounced(t *testing.T) {
	s, c, _ := newServer(CodecOptions{})
	if err := s.Decode(&fakeView{b: request(1, "a", "").bytes(t)}); err != nil {
		t.Fatal(err)
	}
	h := headersOf(t, response(0, StatusSuccess, "", "abc").bytes(t))
	if err := s.EncodeHeaders(1, h, false); err != nil {
		t.Fatal(err)
	}
	h.Release()
	// Too much content before anything was written: the client gets an exception instead.
	if err := s.EncodeData(1, [][]byte{[]byte("abcdef")}, true); !errors.Is(err, ErrContentLength) {
		t.Fatalf("EncodeData = %v", err)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 1 || got[0].status != StatusServerException || c.closed {
		t.Fatalf("wire %+v closed %v", got, c.closed)
	}
}

func TestServerQueueLimit(t *testing.T) {
	s, c, _ := newServer(CodecOptions{MaxQueuedBytes: 100})
	in := cat2(request(1, "a", "").bytes(t), request(2, "b", "").bytes(t))
	if err := s.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 200)
	for _, id := range []uint64{1, 2} {
		h := headersOf(t, response(0, StatusSuccess, "", body).bytes(t))
		if err := s.EncodeHeaders(id, h, false); err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	if err := s.EncodeData(1, [][]byte{[]byte(body[:10])}, false); err != nil {
		t.Fatal(err)
	}
	// Stream 2's content would have to be queued past the limit.
	if err := s.EncodeData(2, [][]byte{[]byte(body)}, true); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("EncodeData = %v", err)
	}
	if err := s.EncodeData(1, [][]byte{[]byte(body[10:])}, true); err != nil {
		t.Fatal(err)
	}
	got := frames(t, c.wire.Bytes())
	if len(got) != 2 || got[0].id != 1 || got[0].content != body || got[1].id != 2 || got[1].status != StatusServerThreadpoolBusy {
		t.Fatalf("wire %+v", got)
	}
}

func TestServerFlush(t *testing.T) {
	s, c, _ := newServer(CodecOptions{})
	if err := s.Decode(&fakeView{b: cat2(request(1, "a", "").bytes(t), request(2, "b", "").bytes(t))}); err != nil {
		t.Fatal(err)
	}
	h := headersOf(t, response(0, StatusSuccess, "", "abc").bytes(t))
	if err := s.EncodeHeaders(1, h, false); err != nil {
		t.Fatal(err)
	}
	h.Release()
	if err := s.Flush(); err != nil || c.ops != 1 {
		t.Fatalf("Flush = %v, %d writes: a lone held head goes out", err, c.ops)
	}
	if err := s.EncodeData(1, [][]byte{[]byte("abc")}, true); err != nil {
		t.Fatal(err)
	}
	if got := frames(t, c.wire.Bytes()); len(got) != 1 || got[0].content != "abc" {
		t.Fatalf("wire %+v", got)
	}
	// Two held heads: flushing one would make the other wait, so nothing is flushed.
	h = headersOf(t, response(0, StatusSuccess, "", "z").bytes(t))
	if err := s.EncodeHeaders(2, h, false); err != nil {
		t.Fatal(err)
	}
	h.Release()
	if err := s.Decode(&fakeView{b: request(3, "c", "").bytes(t)}); err != nil {
		t.Fatal(err)
	}
	h = headersOf(t, response(0, StatusSuccess, "", "y").bytes(t))
	if err := s.EncodeHeaders(3, h, false); err != nil {
		t.Fatal(err)
	}
	h.Release()
	ops := c.ops
	if err := s.Flush(); err != nil || c.ops != ops {
		t.Fatalf("Flush wrote with two heads held")
	}
	s.Drain() // nothing to send in Bolt v1
	if c.ops != ops {
		t.Fatal("Drain wrote")
	}
}

func TestServerWriteErrorIsFatal(t *testing.T) {
	s, c, _ := newServer(CodecOptions{})
	c.failWith = fmt.Errorf("boom")
	err := s.Decode(&fakeView{b: AppendHeartbeat(nil, 1)})
	if !isConnErr(err) {
		t.Fatalf("Decode = %v", err)
	}
}
