package http1

import "testing"

func TestRequestBody(t *testing.T) {
	cases := []struct {
		in   string
		kind BodyKind
		n    int64
	}{
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", BodyChunked, 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", BodyLength, 42},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", BodyNone, 0},
		{"POST / HTTP/1.1\r\nHost: a\r\n\r\n", BodyNone, 0},
		{"GET / HTTP/1.0\r\n\r\n", BodyNone, 0},
		{"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", BodyNone, 0},
	}
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	for _, tc := range cases {
		if _, err := p.Parse([]byte(tc.in), &h); err != nil {
			t.Fatal(err)
		}
		if k, n := RequestBody(&h); k != tc.kind || n != tc.n {
			t.Errorf("%q: %v %d, want %v %d", tc.in, k, n, tc.kind, tc.n)
		}
	}
}

func TestResponseBody(t *testing.T) {
	cases := []struct {
		method string
		in     string
		kind   BodyKind
		n      int64
		reuse  bool
	}{
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", BodyNone, 0, true},
		{"HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", BodyNone, 0, true},
		{"GET", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", BodyNone, 0, true},
		{"GET", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", BodyNone, 0, true},
		{"GET", "HTTP/1.1 304 Not Modified\r\n\r\n", BodyNone, 0, true},
		{"POST", "HTTP/1.1 100 Continue\r\n\r\n", BodyNone, 0, true},
		{"POST", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", BodyNone, 0, true},
		{"GET", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", BodyTunnel, 0, false},
		{"CONNECT", "HTTP/1.1 200 Connection Established\r\n\r\n", BodyTunnel, 0, false},
		{"CONNECT", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", BodyTunnel, 0, false},
		{"CONNECT", "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 5\r\n\r\n", BodyLength, 5, true},
		{"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", BodyChunked, 0, true},
		{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", BodyLength, 1234, true},
		{"GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", BodyNone, 0, true},
		{"GET", "HTTP/1.1 200 OK\r\n\r\n", BodyUntilClose, 0, false},
		{"GET", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", BodyLength, 3, false},
		{"GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", BodyLength, 3, false},
	}
	p := mustResponseParser(t, Limits{})
	rp := mustRequestParser(t, Limits{})
	var h ResponseHead
	var req RequestHead
	for _, tc := range cases {
		if _, err := p.Parse([]byte(tc.in), &h); err != nil {
			t.Fatal(err)
		}
		if k, n := ResponseBody([]byte(tc.method), &h); k != tc.kind || n != tc.n {
			t.Errorf("%s %q: %v %d, want %v %d", tc.method, tc.in, k, n, tc.kind, tc.n)
		}
		target := "/"
		if tc.method == "CONNECT" {
			target = "a:443"
		}
		reqIn := tc.method + " " + target + " HTTP/1.1\r\nHost: a:443\r\n\r\n"
		if _, err := rp.Parse([]byte(reqIn), &req); err != nil {
			t.Fatal(err)
		}
		if got := ReusableAfter(&req, &h); got != tc.reuse {
			t.Errorf("%s %q: reusable %v, want %v", tc.method, tc.in, got, tc.reuse)
		}
	}
	// A request that asked to close ends the connection whatever the response says.
	if _, err := rp.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), &req); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), &h); err != nil {
		t.Fatal(err)
	}
	if ReusableAfter(&req, &h) {
		t.Fatal("reusable after Connection: close")
	}
}

func TestKindStrings(t *testing.T) {
	for k, want := range map[BodyKind]string{BodyNone: "none", BodyLength: "length", BodyChunked: "chunked",
		BodyUntilClose: "until-close", BodyTunnel: "tunnel", 99: "unknown"} {
		if k.String() != want {
			t.Errorf("%d: %s", k, k.String())
		}
	}
	for f, want := range map[TargetForm]string{FormOrigin: "origin", FormAbsolute: "absolute",
		FormAuthority: "authority", FormAsterisk: "asterisk", 0: "unknown"} {
		if f.String() != want {
			t.Errorf("%d: %s", f, f.String())
		}
	}
	if HTTP10.String() != "HTTP/1.0" || HTTP11.String() != "HTTP/1.1" || Version(0).String() != "HTTP/?" {
		t.Error("Version.String")
	}
}
