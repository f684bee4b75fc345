package bolt

import (
	"errors"
	"strconv"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

// maxHeadPart is the most a codec may leave unconsumed under fuzzLimits: a head part that is
// not complete yet. Content is never held back.
var maxHeadPart = RequestHeadLen + fuzzLimits.MaxClass + fuzzLimits.MaxHeader

func codecSeeds(f *testing.F, frames ...[]byte) {
	for i, fr := range frames {
		f.Add(uint16(i*7), fr)
	}
	var all []byte
	for _, fr := range frames {
		all = append(all, fr...)
	}
	f.Add(uint16(0), all)
	f.Add(uint16(3), all)
}

// checkWire fails unless b is a sequence of complete frames, possibly ending with the open
// (partly written) frame.
func checkWire(t *testing.T, b []byte, open bool) {
	t.Helper()
	for len(b) > 0 {
		var fr Frame
		n, err := Decode(b, &fr, Limits{})
		if err == ErrNeedMore && open {
			return
		}
		if err != nil {
			t.Fatalf("codec wrote a broken stream: %v (%x)", err, b[:min(len(b), 48)])
		}
		b = b[n:]
	}
}

// streamCheck follows one stream's callbacks and fails on impossible sequences.
type streamCheck struct {
	headers, ended bool
}

func checkEvent(t *testing.T, seen map[uint64]*streamCheck, e event) {
	t.Helper()
	sc := seen[e.id]
	switch e.kind {
	case "headers":
		if sc != nil && !sc.ended {
			t.Fatalf("second head for stream %d", e.id)
		}
		seen[e.id] = &streamCheck{headers: true, ended: e.end}
	case "data":
		if sc == nil || sc.ended {
			t.Fatalf("data for stream %d without an open head", e.id)
		}
		sc.ended = e.end
	case "reset":
		if sc != nil {
			sc.ended = true
		}
	}
}

// FuzzServerCodec feeds arbitrary bytes, in chunks of a fuzzed size, to a server codec whose
// sink answers streams in different ways (local replies, Bolt responses streamed after the
// request ended, resets). Properties: no panic; an error is a connection error and nothing is
// reported after it; no more than an incomplete head part is ever left unconsumed; the
// callbacks of each stream are well ordered; and the codec's output is always a well-framed
// Bolt stream. Seeds are below (f.Add).
func FuzzServerCodec(f *testing.F) {
	tb := f
	codecSeeds(f,
		request(1, "com.Svc", "hello", "k", "v").bytes(tb),
		AppendHeartbeat(nil, 2),
		oneway(3, "svc", "fire").bytes(tb),
		request(4, "", "").bytes(tb),
		request(1, "dup", "x").bytes(tb),
		request(5, "svc", "0123456789abcdef0123456789", "a", "b").bytes(tb),
		response(6, StatusSuccess, "", "stray").bytes(tb),
		hostile(0x8000, 0, 0),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	)
	f.Fuzz(func(t *testing.T, split uint16, in []byte) {
		s, c, sink := newServer(CodecOptions{MaxStreams: 4, MaxQueuedBytes: 64})
		s.r.lim = fuzzLimits
		var ended []uint64 // streams whose request ended, answered after the Decode call
		responded := map[uint64]bool{}
		respond := func(id uint64) {
			if responded[id] {
				return
			}
			responded[id] = true
			switch id % 4 {
			case 0:
				_ = s.EncodeHeaders(id, protocol.NewHeaderList(":status", strconv.Itoa(400+int(id%200))), false)
				_ = s.EncodeData(id, [][]byte{[]byte("local reply")}, true)
			case 1, 3:
				body := []byte("response-content-" + strconv.Itoa(int(id)))
				raw, _ := AppendFrame(nil, &Frame{Type: TypeResponse, CmdCode: CmdResponse, Version: 1, RequestID: 9, Codec: 1,
					Class: []byte("java.lang.String"), Content: body})
				h := headersOf(t, raw)
				_ = s.EncodeHeaders(id, h, false)
				h.Release()
				_ = s.EncodeData(id, [][]byte{body[:5]}, false)
				_ = s.EncodeData(id, [][]byte{body[5:]}, true)
			case 2:
				s.Reset(id, errors.New("fuzz reset"))
			}
		}
		sink.onHeaders = func(id uint64, _ protocol.Headers, end bool) {
			if id%4 == 0 {
				respond(id) // at once, inside OnHeaders
			} else if end {
				ended = append(ended, id)
			}
		}
		sink.onData = func(id uint64, end bool) {
			if end {
				ended = append(ended, id)
			}
		}
		fd := &feeder{decode: s.Decode}
		chunk := int(split%97) + 1
		failed := false
		for off := 0; off < len(in) && !failed; off += chunk {
			before := len(sink.events)
			err := fd.feed(in[off:min(off+chunk, len(in))])
			for _, e := range sink.events[before:] {
				if e.kind == "data" && len(e.data) == 0 && !e.end {
					t.Fatalf("empty data event %v", e)
				}
			}
			if err != nil {
				if !errors.Is(err, protocol.ErrConnection) {
					t.Fatalf("Decode error %v is not a connection error", err)
				}
				n := len(sink.events)
				if err2 := fd.feed([]byte{1, 1, 0, 1}); err2 == nil || len(sink.events) != n {
					t.Fatalf("Decode after an error: %v, %d new events", err2, len(sink.events)-n)
				}
				failed = true
				break
			}
			if len(fd.pending) >= maxHeadPart {
				t.Fatalf("%d bytes left unconsumed", len(fd.pending))
			}
			for _, id := range ended {
				respond(id)
			}
			ended = ended[:0]
		}
		seen := map[uint64]*streamCheck{}
		for _, e := range sink.events {
			checkEvent(t, seen, e)
		}
		if !c.closed {
			checkWire(t, c.wire.Bytes(), s.w.open)
		}
	})
}

// FuzzClientCodec feeds arbitrary bytes to a client codec with streams in every state (a
// plain request, a request half sent, a oneway, a stream never started), and sinks that
// reset their stream in the middle of a response. Properties as for FuzzServerCodec, plus:
// ActiveStreams never grows without NewStream and the codec stays usable unless it
// returned an error.
func FuzzClientCodec(f *testing.F) {
	tb := f
	codecSeeds(f,
		response(1, StatusSuccess, "java.lang.String", "one", "k", "v").bytes(tb),
		response(2, StatusTimeout, "", "").bytes(tb),
		response(3, StatusSuccess, "", "for the oneway").bytes(tb),
		response(4, StatusSuccess, "", "x").bytes(tb),
		response(99, StatusSuccess, "", "unknown").bytes(tb),
		AppendHeartbeat(nil, 7),
		AppendHeartbeatAck(nil, 8),
		request(5, "svc", "a request from a server").bytes(tb),
		hostile(0, 0, 0xFFFFFFFF),
	)
	f.Fuzz(func(t *testing.T, split uint16, in []byte) {
		c, conn := newClient(CodecOptions{MaxQueuedBytes: 64})
		c.r.lim = fuzzLimits
		sink := &recSink{}
		for i := range 4 {
			id, err := c.NewStream(sink)
			if err != nil {
				t.Fatal(err)
			}
			switch i {
			case 0:
				h := headersOf(t, request(1, "svc", "").bytes(t))
				_ = c.EncodeHeaders(id, h, true)
				h.Release()
			case 1:
				h := headersOf(t, request(1, "svc", "0123456789").bytes(t))
				_ = c.EncodeHeaders(id, h, false)
				_ = c.EncodeData(id, [][]byte{[]byte("01234")}, false)
				h.Release()
			case 2:
				h := headersOf(t, oneway(1, "svc", "").bytes(t))
				_ = c.EncodeHeaders(id, h, true)
				h.Release()
			}
		}
		sink.onData = func(id uint64, end bool) {
			if !end && split%2 == 1 {
				c.Reset(id, errors.New("fuzz reset"))
			}
		}
		fd := &feeder{decode: c.Decode}
		chunk := int(split%89) + 1
		for off := 0; off < len(in); off += chunk {
			err := fd.feed(in[off:min(off+chunk, len(in))])
			if err != nil {
				if !errors.Is(err, protocol.ErrConnection) || c.Reusable() {
					t.Fatalf("Decode error %v (reusable %v)", err, c.Reusable())
				}
				n := len(sink.events)
				if err2 := fd.feed(response(1, 0, "", "").bytes(t)); err2 == nil || len(sink.events) != n {
					t.Fatalf("Decode after an error: %v", err2)
				}
				break
			}
			if len(fd.pending) >= maxHeadPart {
				t.Fatalf("%d bytes left unconsumed", len(fd.pending))
			}
			if a := c.ActiveStreams(); a > 4 || a < 0 {
				t.Fatalf("%d active streams", a)
			}
			conn.runExecs()
		}
		seen := map[uint64]*streamCheck{}
		for _, e := range sink.events {
			checkEvent(t, seen, e)
		}
		if !conn.closed {
			checkWire(t, conn.wire.Bytes(), c.w.open)
		}
	})
}
