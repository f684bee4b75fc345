package bolt

import (
	"reflect"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

func TestHeadersGetRangeAndDuplicates(t *testing.T) {
	h := headersOf(t, request(1, "com.Svc", "body", "service", "s1", "TraceId", "t", "dup", "first", "dup", "last").bytes(t))
	defer h.Release()
	cases := map[string]string{
		protocol.Path: "com.Svc",
		"service":     "s1",
		"dup":         "last", // the last duplicate, as Bolt peers decode it
		"traceid":     "t",    // case-insensitive fallback
		"TraceId":     "t",
	}
	for name, want := range cases {
		if got := get(t, h, name); got != want {
			t.Errorf("Get(%q) = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{protocol.Status, protocol.Method, protocol.Authority, "missing"} {
		if v, ok := h.Get(name); ok {
			t.Errorf("Get(%q) = %q on a request", name, v)
		}
	}
	want := fields(":path", "com.Svc", "service", "s1", "TraceId", "t", "dup", "first", "dup", "last")
	if got := fieldsOf(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("Range = %v", got)
	}
	// Range stops when asked to.
	n := 0
	h.Range(func(string, string) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range went on after false: %d calls", n)
	}
}

func TestHeadersExactMatchWinsOverFold(t *testing.T) {
	h := headersOf(t, request(1, "c", "", "Key", "upper", "key", "lower", "KEY", "shout").bytes(t))
	defer h.Release()
	if v := get(t, h, "key"); v != "lower" {
		t.Fatalf("Get(key) = %q", v)
	}
	if v := get(t, h, "kEy"); v != "shout" {
		t.Fatalf("Get(kEy) = %q, want the last case-insensitive match", v)
	}
}

func TestHeadersOverlay(t *testing.T) {
	h := headersOf(t, request(1, "com.Svc", "", "a", "1", "b", "2", "b", "3").bytes(t))
	defer h.Release()
	h.Set("a", "one")
	h.Add("c", "x")
	h.Add("c", "y")
	h.Del("b")
	h.Set(protocol.Authority, "host")
	if v := get(t, h, "a"); v != "one" {
		t.Fatalf("a = %q", v)
	}
	if v := get(t, h, "c"); v != "y" {
		t.Fatalf("c = %q", v)
	}
	if _, ok := h.Get("b"); ok {
		t.Fatal("b survived Del")
	}
	want := fields(":path", "com.Svc", ":authority", "host", "a", "one", "c", "x", "c", "y")
	if got := fieldsOf(h); !reflect.DeepEqual(got, want) {
		t.Fatalf("Range = %v", got)
	}
	h.Del("c")
	h.Add("b", "back")
	if v := get(t, h, "b"); v != "back" {
		t.Fatalf("b re-added = %q", v)
	}
	h.Del(protocol.Path)
	if _, ok := h.Get(protocol.Path); ok {
		t.Fatal(":path survived Del")
	}
}

func TestHeadersStatusMapping(t *testing.T) {
	cases := map[Status]string{
		StatusSuccess: "200", StatusNoProcessor: "404", StatusServerThreadpoolBusy: "503", StatusTimeout: "504",
		StatusCodecException: "400", StatusServerException: "500", StatusError: "500", StatusServerDeserialException: "500",
		0x77: "500",
	}
	for st, want := range cases {
		h := headersOf(t, response(1, st, "", "").bytes(t))
		if got := get(t, h, protocol.Status); got != want {
			t.Errorf("%v: :status %q, want %q", st, got, want)
		}
		if h.BoltStatus() != st {
			t.Errorf("BoltStatus %v, want %v", h.BoltStatus(), st)
		}
		if _, ok := h.Get(protocol.Path); ok {
			t.Errorf("a response has :path")
		}
		// Setting the same HTTP status keeps the raw Bolt status; another one maps back.
		h.Set(protocol.Status, want)
		if h.BoltStatus() != st {
			t.Errorf("%v: BoltStatus after Set(%s) = %v", st, want, h.BoltStatus())
		}
		h.Set(protocol.Status, "504")
		if want != "504" && h.BoltStatus() != StatusTimeout {
			t.Errorf("%v: BoltStatus after Set(504) = %v", st, h.BoltStatus())
		}
		h.Release()
	}
}

func TestHeadersNullValue(t *testing.T) {
	raw := request(1, "c", "", "n", "").bytes(t)
	raw = append(raw[:len(raw)-4], 0xFF, 0xFF, 0xFF, 0xFF)
	h := headersOf(t, raw)
	defer h.Release()
	if v, ok := h.Get("n"); !ok || v != "" {
		t.Fatalf("null value: %q, %v", v, ok)
	}
}

func TestStatusFromHTTPRoundTrip(t *testing.T) {
	for _, st := range []Status{StatusSuccess, StatusNoProcessor, StatusServerThreadpoolBusy, StatusTimeout, StatusCodecException, StatusServerException} {
		if got := StatusFromHTTP(HTTPStatus(st)); got != st {
			t.Errorf("%v -> %d -> %v", st, HTTPStatus(st), got)
		}
	}
}

func TestDecodeHead(t *testing.T) {
	frame := request(9, "com.Svc", "content!", "k", "v").bytes(t)
	headEnd := RequestHeadLen + 7 + 10
	for cut := 0; cut < headEnd; cut++ {
		var f Frame
		n, _, err := DecodeHead(frame[:cut], &f, Limits{})
		if err != ErrNeedMore || n <= cut || n > headEnd {
			t.Fatalf("cut %d: n %d, %v", cut, n, err)
		}
	}
	var f Frame
	n, cl, err := DecodeHead(frame[:headEnd], &f, Limits{})
	if err != nil || n != headEnd || cl != 8 || string(f.Class) != "com.Svc" || f.Content != nil || len(f.Raw) != headEnd {
		t.Fatalf("DecodeHead = %d, %d, %v, %+v", n, cl, err, f)
	}
	// The whole-frame limit is decided from the fixed head.
	if _, _, err := DecodeHead(frame[:RequestHeadLen], &f, Limits{MaxFrame: 40}); !IsFatal(err) {
		t.Fatalf("frame past MaxFrame: %v", err)
	}
	allocs := testing.AllocsPerRun(1000, func() { _, _, _ = DecodeHead(frame, &f, Limits{}) })
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}

func fields(kv ...string) []protocol.Field {
	var out []protocol.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, protocol.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}
