package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// goldenRequest is a request written out by hand from the layout in sofa-bolt's RpcProtocol
// javadoc, independent of this package's encoder: id 0x01020304, timeout 3000 ms, class
// "com.Foo", header {"k": "v"}, content "hello".
var goldenRequest = []byte{
	0x01,       // proto
	0x01,       // type: request
	0x00, 0x01, // cmdcode: rpc request
	0x01,                   // ver2
	0x01, 0x02, 0x03, 0x04, // requestId
	0x01,                   // codec: hessian2
	0x00, 0x00, 0x0b, 0xb8, // timeout 3000
	0x00, 0x07, // classLen
	0x00, 0x0a, // headerLen: 4+1+4+1
	0x00, 0x00, 0x00, 0x05, // contentLen
	'c', 'o', 'm', '.', 'F', 'o', 'o',
	0, 0, 0, 1, 'k', 0, 0, 0, 1, 'v',
	'h', 'e', 'l', 'l', 'o',
}

// goldenResponse answers goldenRequest with SERVER_THREADPOOL_BUSY and no body.
var goldenResponse = []byte{
	0x01, 0x00, 0x00, 0x02, 0x01,
	0x01, 0x02, 0x03, 0x04,
	0x01,
	0x00, 0x04, // status: busy
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

func TestDecodeGoldenRequest(t *testing.T) {
	var f Frame
	n, err := Decode(goldenRequest, &f, Limits{})
	if err != nil || n != len(goldenRequest) {
		t.Fatalf("Decode = %d, %v; want %d, nil", n, err, len(goldenRequest))
	}
	if f.Kind() != KindRequest || f.RequestID != 0x01020304 || f.Timeout != 3000 || f.Codec != CodecHessian2 ||
		f.Version != 1 || string(f.Class) != "com.Foo" || string(f.Content) != "hello" {
		t.Fatalf("decoded %+v", f)
	}
	if v, ok := f.Header.Get("k"); !ok || string(v) != "v" {
		t.Fatalf("Header.Get(k) = %q, %v", v, ok)
	}
	if !bytes.Equal(f.Raw, goldenRequest) {
		t.Fatalf("Raw does not cover the frame")
	}
	// Re-encoding the decoded frame must give the same bytes.
	out, err := AppendFrame(nil, &f)
	if err != nil || !bytes.Equal(out, goldenRequest) {
		t.Fatalf("AppendFrame = %x, %v\nwant %x", out, err, goldenRequest)
	}
}

func TestDecodeGoldenResponse(t *testing.T) {
	var f Frame
	n, err := Decode(goldenResponse, &f, Limits{})
	if err != nil || n != ResponseHeadLen {
		t.Fatalf("Decode = %d, %v", n, err)
	}
	if f.Kind() != KindResponse || f.Status != StatusServerThreadpoolBusy || f.RequestID != 0x01020304 {
		t.Fatalf("decoded %+v", f)
	}
	if got := AppendStatusResponse(nil, 0x01020304, CodecHessian2, StatusServerThreadpoolBusy); !bytes.Equal(got, goldenResponse) {
		t.Fatalf("AppendStatusResponse = %x\nwant %x", got, goldenResponse)
	}
}

func mustHeader(t testing.TB, kv ...string) Header {
	t.Helper()
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = AppendHeader(b, kv[i], kv[i+1])
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRoundTrip(t *testing.T) {
	hdr := mustHeader(t, "service", "com.alipay.Echo:1.0", "sofa_head_method_name", "echo", "empty", "")
	cases := []struct {
		name string
		f    Frame
		kind Kind
	}{
		{"request", Frame{Type: TypeRequest, CmdCode: CmdRequest, Version: 1, RequestID: 7, Codec: 11, Timeout: 1500,
			Class: []byte("com.alipay.sofa.rpc.core.request.SofaRequest"), Header: hdr, Content: []byte("payload")}, KindRequest},
		{"oneway", Frame{Type: TypeOneway, CmdCode: CmdRequest, Version: 1, RequestID: 0xFFFFFFFF, Codec: 1, Timeout: -1,
			Header: hdr, Content: bytes.Repeat([]byte{0xAB}, 4096)}, KindOneway},
		{"response", Frame{Type: TypeResponse, CmdCode: CmdResponse, Version: 1, RequestID: 9, Codec: 1,
			Status: StatusServerException, Class: []byte("java.lang.String"), Content: []byte{0}}, KindResponse},
		{"heartbeat", Frame{Type: TypeRequest, CmdCode: CmdHeartbeat, Version: 1, RequestID: 3, Codec: 1, Timeout: -1}, KindHeartbeat},
		{"heartbeat-ack", Frame{Type: TypeResponse, CmdCode: CmdHeartbeat, Version: 1, RequestID: 3, Codec: 1}, KindHeartbeatAck},
		{"unknown-status", Frame{Type: TypeResponse, CmdCode: CmdResponse, Version: 2, RequestID: 1, Status: 0xBEEF}, KindResponse},
	}
	var stream []byte
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := AppendFrame(nil, &c.f)
			if err != nil {
				t.Fatal(err)
			}
			want := c.f.HeadLen() + len(c.f.Class) + c.f.Header.Len() + len(c.f.Content)
			if len(b) != want {
				t.Fatalf("encoded %d bytes, want %d", len(b), want)
			}
			var g Frame
			n, err := Decode(b, &g, Limits{})
			if err != nil || n != len(b) {
				t.Fatalf("Decode = %d, %v", n, err)
			}
			if g.Kind() != c.kind {
				t.Fatalf("kind %v, want %v", g.Kind(), c.kind)
			}
			assertSameFrame(t, &g, &c.f)
		})
		b, _ := AppendFrame(nil, &c.f)
		stream = append(stream, b...)
	}
	// The same frames back to back, as a pipelined connection delivers them.
	var f Frame
	for i, c := range cases {
		n, err := Decode(stream, &f, Limits{})
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		assertSameFrame(t, &f, &c.f)
		stream = stream[n:]
	}
	if len(stream) != 0 {
		t.Fatalf("%d bytes left over", len(stream))
	}
}

func assertSameFrame(t *testing.T, got, want *Frame) {
	t.Helper()
	if got.Type != want.Type || got.CmdCode != want.CmdCode || got.Version != want.Version ||
		got.RequestID != want.RequestID || got.Codec != want.Codec || got.Status != want.Status ||
		got.Timeout != want.Timeout || !bytes.Equal(got.Class, want.Class) ||
		!bytes.Equal(got.Header.Bytes(), want.Header.Bytes()) || !bytes.Equal(got.Content, want.Content) {
		t.Fatalf("decoded %+v\nwant %+v", got, want)
	}
}

func TestDecodeSlicesAreCapped(t *testing.T) {
	buf := append([]byte(nil), goldenRequest...)
	var f Frame
	if _, err := Decode(buf, &f, Limits{}); err != nil {
		t.Fatal(err)
	}
	_ = append(f.Class, 'X', 'X', 'X')
	_ = append(f.Header.Bytes(), 'X')
	if !bytes.Equal(buf, goldenRequest) {
		t.Fatal("appending to a decoded slice overwrote the frame")
	}
}

// hostile builds a 22-byte request head with the given length fields.
func hostile(classLen, headerLen uint16, contentLen uint32) []byte {
	b := appendFixed(nil, TypeRequest, CmdRequest, 1, 42, 1)
	b = binary.BigEndian.AppendUint32(b, 1000)
	b = binary.BigEndian.AppendUint16(b, classLen)
	b = binary.BigEndian.AppendUint16(b, headerLen)
	return binary.BigEndian.AppendUint32(b, contentLen)
}

func TestDecodeRejectsHostileFrames(t *testing.T) {
	lim := Limits{MaxFrame: 1 << 20, MaxHeader: 4096, MaxClass: 256}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"http request", []byte("GET / HTTP/1.1\r\n"), ErrBadProtocol},
		{"bolt v2", []byte{0x02, 0x01, 0x01, 0x00, 0x01}, ErrBadProtocol},
		{"zero byte", []byte{0x00}, ErrBadProtocol},
		{"tls hello", []byte{0x16, 0x03, 0x01}, ErrBadProtocol},
		{"unknown type", []byte{0x01, 0x03}, ErrUnknownType},
		{"type 0xff", []byte{0x01, 0xFF, 0, 1}, ErrUnknownType},
		{"unknown cmdcode", []byte{0x01, 0x01, 0x00, 0x03}, ErrUnknownCmdCode},
		{"cmdcode 0xffff", []byte{0x01, 0x00, 0xFF, 0xFF}, ErrUnknownCmdCode},
		{"request with response code", []byte{0x01, 0x01, 0x00, 0x02}, ErrUnknownCmdCode},
		{"response with request code", []byte{0x01, 0x00, 0x00, 0x01}, ErrUnknownCmdCode},
		{"oneway heartbeat", []byte{0x01, 0x02, 0x00, 0x00}, ErrUnknownCmdCode},
		{"negative class", hostile(0x8000, 0, 0), ErrBadLength},
		{"negative header", hostile(0, 0xFFFF, 0), ErrBadLength},
		{"negative content", hostile(0, 0, 0x80000000), ErrBadLength},
		{"content -1", hostile(0, 0, 0xFFFFFFFF), ErrBadLength},
		{"class past limit", hostile(257, 0, 0), ErrTooLarge},
		{"header past limit", hostile(0, 4097, 0), ErrTooLarge},
		{"frame past limit", hostile(0, 0, 1<<20-RequestHeadLen+1), ErrTooLarge},
		{"max content", hostile(0, 0, 0x7FFFFFFF), ErrTooLarge},
		{"sum past limit", hostile(256, 4096, 1<<20-RequestHeadLen-256-4096+1), ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Frame
			n, err := Decode(c.in, &f, lim)
			if !errors.Is(err, c.want) || n != 0 {
				t.Fatalf("Decode = %d, %v; want 0, %v", n, err, c.want)
			}
			if !IsFatal(err) {
				t.Fatalf("IsFatal(%v) = false", err)
			}
			if f.Raw != nil || f.Type != 0 {
				t.Fatalf("frame touched on error: %+v", f)
			}
		})
	}
}

func TestDecodeAcceptsExactLimits(t *testing.T) {
	lim := Limits{MaxFrame: RequestHeadLen + 4 + 16 + 100, MaxHeader: 16, MaxClass: 4}
	f := Frame{Type: TypeRequest, CmdCode: CmdRequest, Version: 1, Class: []byte("abcd"),
		Header: mustHeader(t, "abc", "defgh"), Content: make([]byte, 100)}
	if f.Header.Len() != 16 {
		t.Fatalf("header block %d bytes", f.Header.Len())
	}
	b, err := AppendFrame(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	var g Frame
	if n, err := Decode(b, &g, lim); err != nil || n != len(b) {
		t.Fatalf("frame at every limit: Decode = %d, %v", n, err)
	}
	lim.MaxFrame--
	if _, err := Decode(b, &g, lim); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over MaxFrame: %v", err)
	}
}

// TestDecodeTruncatedEverySplit feeds every proper prefix of several frames and checks that
// each is ErrNeedMore with a need that is larger than the prefix, never larger than the frame,
// and exact once the head is complete.
func TestDecodeTruncatedEverySplit(t *testing.T) {
	frames := [][]byte{
		goldenRequest,
		goldenResponse,
		AppendHeartbeat(nil, 1),
		AppendHeartbeatAck(nil, 1),
	}
	big, err := AppendFrame(nil, &Frame{Type: TypeOneway, CmdCode: CmdRequest, Class: []byte("x"),
		Header: mustHeader(t, "a", "b", "c", ""), Content: bytes.Repeat([]byte("z"), 300)})
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, big)
	for fi, full := range frames {
		head := RequestHeadLen
		if full[1] == TypeResponse {
			head = ResponseHeadLen
		}
		for i := 0; i < len(full); i++ {
			prefix := full[:i:i] // capped: Decode must not read past it
			var f Frame
			n, err := Decode(prefix, &f, Limits{})
			if err != ErrNeedMore {
				t.Fatalf("frame %d, prefix %d: err %v, want ErrNeedMore", fi, i, err)
			}
			if IsFatal(err) {
				t.Fatalf("ErrNeedMore reported fatal")
			}
			if n <= i || n > len(full) {
				t.Fatalf("frame %d, prefix %d: need %d, frame is %d", fi, i, n, len(full))
			}
			if i >= head && n != len(full) {
				t.Fatalf("frame %d, prefix %d: need %d after the head, want %d", fi, i, n, len(full))
			}
			if f.Raw != nil {
				t.Fatalf("frame touched on ErrNeedMore")
			}
		}
		var f Frame
		if n, err := Decode(full, &f, Limits{}); err != nil || n != len(full) {
			t.Fatalf("frame %d whole: %d, %v", fi, n, err)
		}
	}
}

func TestDecodeNeedMoreBoundedByLimit(t *testing.T) {
	// A head announcing a frame past MaxFrame must fail, not ask the reader to buffer it.
	in := hostile(0, 0, 64<<20)
	n, err := Decode(in, new(Frame), Limits{})
	if !errors.Is(err, ErrTooLarge) || n != 0 {
		t.Fatalf("Decode = %d, %v", n, err)
	}
	in = hostile(0, 0, 1000)
	n, err = Decode(in, new(Frame), Limits{})
	if err != ErrNeedMore || n != RequestHeadLen+1000 {
		t.Fatalf("Decode = %d, %v", n, err)
	}
}

func TestDecodeBadHeaderIsStreamError(t *testing.T) {
	// A well-delimited request whose header block announces a key longer than the block.
	bad := []byte{0, 0, 0, 9, 'k'}
	f := Frame{Type: TypeRequest, CmdCode: CmdRequest, Version: 1, RequestID: 77, Codec: 1, Timeout: 10}
	b, err := AppendHead(nil, &f, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Patch in the raw, invalid header block: AppendHead only takes a parsed Header.
	binary.BigEndian.PutUint16(b[16:18], uint16(len(bad)))
	b = append(append(b, bad...), 'o', 'k')
	next := AppendHeartbeat(nil, 78)
	stream := append(b, next...)

	var g Frame
	n, err := Decode(stream, &g, Limits{})
	if !errors.Is(err, ErrBadHeader) {
		t.Fatalf("err = %v, want ErrBadHeader", err)
	}
	if IsFatal(err) {
		t.Fatal("ErrBadHeader reported fatal")
	}
	if n != len(b) || g.RequestID != 77 || g.Kind() != KindRequest || string(g.Content) != "ok" || g.Header.Len() != 0 {
		t.Fatalf("n %d (want %d), frame %+v", n, len(b), g)
	}
	// The connection goes on: the next frame decodes.
	if _, err := Decode(stream[n:], &g, Limits{}); err != nil || g.Kind() != KindHeartbeat || g.RequestID != 78 {
		t.Fatalf("next frame: %v %+v", err, g)
	}
}

func TestLimitsValidate(t *testing.T) {
	good := []Limits{{}, {MaxFrame: RequestHeadLen}, {MaxHeader: MaxWireHeader, MaxClass: MaxWireClass}, {MaxFrame: maxFrameLimit}}
	for _, l := range good {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	bad := []Limits{{MaxFrame: -1}, {MaxHeader: -1}, {MaxClass: -5}, {MaxFrame: RequestHeadLen - 1},
		{MaxHeader: MaxWireHeader + 1}, {MaxClass: MaxWireClass + 1}, {MaxFrame: maxFrameLimit + 1}}
	for _, l := range bad {
		if err := l.Validate(); !errors.Is(err, ErrBadLimits) {
			t.Errorf("%+v: %v, want ErrBadLimits", l, err)
		}
	}
	d := Limits{}.WithDefaults()
	if d.MaxFrame != 16<<20 || d.MaxHeader != 32767 || d.MaxClass != 1024 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestSetRequestIDInPlace(t *testing.T) {
	for _, orig := range [][]byte{goldenRequest, goldenResponse} {
		buf := append([]byte(nil), orig...)
		var f Frame
		if _, err := Decode(buf, &f, Limits{}); err != nil {
			t.Fatal(err)
		}
		f.SetRequestID(0xCAFEBABE)
		if f.RequestID != 0xCAFEBABE {
			t.Fatal("field not updated")
		}
		var g Frame
		if _, err := Decode(buf, &g, Limits{}); err != nil || g.RequestID != 0xCAFEBABE {
			t.Fatalf("after rewrite: %v, id %#x", err, g.RequestID)
		}
		if err := SetRequestID(buf, 0x01020304); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, orig) {
			t.Fatal("rewriting back did not restore the original bytes")
		}
		if id, err := RequestID(buf); err != nil || id != 0x01020304 {
			t.Fatalf("RequestID = %#x, %v", id, err)
		}
	}
	if err := SetRequestID(goldenRequest[:8], 1); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("short: %v", err)
	}
	if err := SetRequestID([]byte("GET / HTTP/1.1"), 1); !errors.Is(err, ErrBadProtocol) {
		t.Fatalf("not bolt: %v", err)
	}
	if _, err := RequestID(nil); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("RequestID(nil): %v", err)
	}
}

func TestHeartbeatEncodingMatchesSofaBolt(t *testing.T) {
	var f Frame
	hb := AppendHeartbeat(nil, 5)
	if n, err := Decode(hb, &f, Limits{}); err != nil || n != RequestHeadLen {
		t.Fatalf("heartbeat: %d %v", n, err)
	}
	if f.Kind() != KindHeartbeat || f.Timeout != -1 || f.Version != 1 || f.Codec != CodecHessian2 || f.RequestID != 5 || !f.ExpectsResponse() {
		t.Fatalf("heartbeat %+v", f)
	}
	ack := AppendHeartbeatAck(nil, 5)
	if n, err := Decode(ack, &f, Limits{}); err != nil || n != ResponseHeadLen {
		t.Fatalf("ack: %d %v", n, err)
	}
	if f.Kind() != KindHeartbeatAck || f.Status != StatusSuccess || f.RequestID != 5 || f.IsRequest() {
		t.Fatalf("ack %+v", f)
	}
	for _, st := range []Status{StatusServerThreadpoolBusy, StatusTimeout, StatusNoProcessor, StatusCodecException} {
		b := AppendStatusResponse(nil, 99, 11, st)
		if _, err := Decode(b, &f, Limits{}); err != nil || f.Kind() != KindResponse || f.Status != st ||
			f.RequestID != 99 || f.Codec != 11 || len(f.Class)+f.Header.Len()+len(f.Content) != 0 {
			t.Fatalf("status %v: %v %+v", st, err, f)
		}
	}
}

func TestAppendHeadErrors(t *testing.T) {
	base := Frame{Type: TypeRequest, CmdCode: CmdRequest}
	long := make([]byte, MaxWireClass+1)
	cases := []struct {
		name    string
		f       Frame
		content int
		want    error
	}{
		{"bad type", Frame{Type: 9, CmdCode: CmdRequest}, 0, ErrUnknownType},
		{"bad pair", Frame{Type: TypeOneway, CmdCode: CmdHeartbeat}, 0, ErrUnknownCmdCode},
		{"class too long", Frame{Type: TypeRequest, CmdCode: CmdRequest, Class: long}, 0, ErrTooLarge},
		{"negative content", base, -1, ErrBadLength},
		{"content too long", base, MaxWireContent + 1, ErrTooLarge},
	}
	for _, c := range cases {
		dst := []byte("keep")
		out, err := AppendHead(dst, &c.f, c.content)
		if !errors.Is(err, c.want) || string(out) != "keep" {
			t.Errorf("%s: %q, %v; want dst unchanged and %v", c.name, out, err, c.want)
		}
	}
	// A header block over the wire maximum (built pair by pair, each valid on its own).
	var hb []byte
	for len(hb) <= MaxWireHeader {
		hb = AppendHeader(hb, "key", string(make([]byte, 1000)))
	}
	h, err := ParseHeader(hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AppendHead(nil, &Frame{Type: TypeRequest, CmdCode: CmdRequest, Header: h}, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized header: %v", err)
	}
}

func TestStringers(t *testing.T) {
	if StatusServerThreadpoolBusy.String() != "SERVER_THREADPOOL_BUSY" || StatusServerDeserialException.String() != "SERVER_DESERIAL_EXCEPTION" ||
		Status(0x99).String() != "STATUS(0x99)" {
		t.Fatal("Status.String")
	}
	if KindHeartbeatAck.String() != "heartbeat-ack" || Kind(0).String() != "kind(0)" {
		t.Fatal("Kind.String")
	}
}

// TestZeroAllocs asserts the hot paths the brief requires to be allocation-free.
func TestZeroAllocs(t *testing.T) {
	var f Frame
	dst := make([]byte, 0, 256)
	buf := append([]byte(nil), goldenRequest...)
	checks := map[string]func(){
		"Decode": func() {
			if _, err := Decode(buf, &f, Limits{}); err != nil {
				t.Fatal(err)
			}
		},
		"DecodeNeedMore": func() {
			if _, err := Decode(buf[:30], &f, Limits{}); err != ErrNeedMore {
				t.Fatal(err)
			}
		},
		"HeaderGet": func() {
			if _, ok := f.Header.Get("k"); !ok {
				t.Fatal("missing")
			}
		},
		"HeaderRange": func() {
			n := 0
			f.Header.Range(func(k, v []byte) bool { n++; return true })
			if n != 1 {
				t.Fatal(n)
			}
		},
		"AppendFrame": func() {
			if _, err := AppendFrame(dst[:0], &f); err != nil {
				t.Fatal(err)
			}
		},
		"AppendHeader": func() { _ = AppendHeader(dst[:0], "key", "value") },
		"AppendStatus": func() { _ = AppendStatusResponse(dst[:0], 1, 1, StatusServerThreadpoolBusy) },
		"AppendHeartbeat": func() {
			_ = AppendHeartbeat(dst[:0], 1)
			_ = AppendHeartbeatAck(dst[:0], 1)
		},
		"SetRequestID": func() {
			if err := SetRequestID(buf, 5); err != nil {
				t.Fatal(err)
			}
		},
	}
	if _, err := Decode(buf, &f, Limits{}); err != nil {
		t.Fatal(err)
	}
	for name, fn := range checks {
		if a := testing.AllocsPerRun(100, fn); a != 0 {
			t.Errorf("%s: %.1f allocs/op, want 0", name, a)
		}
	}
}

func TestDetect(t *testing.T) {
	cases := []struct {
		in   []byte
		want error
	}{
		{nil, ErrNeedMore},
		{[]byte{0x01}, ErrNeedMore},
		{[]byte{0x01, 0x01}, ErrNeedMore},
		{[]byte{0x01, 0x00, 0x00}, ErrNeedMore},
		{goldenRequest[:4], nil},
		{goldenResponse, nil},
		{AppendHeartbeat(nil, 1)[:4], nil},
		{[]byte("PRI * HTTP/2.0"), ErrBadProtocol},
		{[]byte{0xda, 0xbb, 0xc2, 0x00}, ErrBadProtocol}, // dubbo magic
		{[]byte{0x16, 0x03, 0x01, 0x00}, ErrBadProtocol}, // TLS ClientHello
		{[]byte{0x02, 0x01, 0x00, 0x01}, ErrBadProtocol}, // bolt v2
		{[]byte{0x01, 0x07}, ErrUnknownType},
		{[]byte{0x01, 0x01, 0x00, 0x09}, ErrUnknownCmdCode},
	}
	for _, c := range cases {
		if err := Detect(c.in); !errors.Is(err, c.want) {
			t.Errorf("Detect(%x) = %v, want %v", c.in, err, c.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _ = Detect(goldenRequest) }); a != 0 {
		t.Errorf("Detect: %.1f allocs/op", a)
	}
}
