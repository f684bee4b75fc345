package http1

import (
	"errors"
	"strings"
	"testing"
)

// hostileRequests is the smuggling and malformed-input corpus (notes/bad-input.md §3.5, §3.6).
// Every case must fail with exactly the named sentinel, however the bytes are split.
var hostileRequests = []struct {
	name string
	in   string
	want error
}{
	// CL.TE / TE.CL and Transfer-Encoding obfuscations.
	{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", ErrContentLengthWithTransferEncoding},
	{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n", ErrContentLengthWithTransferEncoding},
	{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", ErrSpaceBeforeColon},
	{"TE tab before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", ErrSpaceBeforeColon},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE chunkedx", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked-x\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE quoted", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", ErrUnsupportedTransferEncoding},
	{"TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \vchunked\r\n\r\n", ErrInvalidHeaderValue},
	{"TE NUL suffix", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x00\r\n\r\n", ErrInvalidHeaderValue},
	{"TE duplicate", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrDuplicateTransferEncoding},
	{"TE duplicate case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n", ErrDuplicateTransferEncoding},
	{"TE line folded", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", ErrObsFold},
	{"TE folded with tab", "POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tTransfer-Encoding: chunked\r\n\r\n", ErrObsFold},
	{"TE behind bare LF", "POST / HTTP/1.1\r\nHost: a\r\nX: X\nTransfer-Encoding: chunked\r\n\r\n", ErrBareLF},
	{"TE behind bare CR", "POST / HTTP/1.1\r\nHost: a\r\nX: X\rTransfer-Encoding: chunked\r\n\r\n", ErrBareCR},
	{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncodingHTTP10},
	{"TE underscore name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", ErrUnsupportedTransferEncoding},

	// Content-Length.
	{"CL duplicate equal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", ErrDuplicateContentLength},
	{"CL duplicate different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ErrDuplicateContentLength},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", ErrDuplicateContentLength},
	{"CL list no space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n", ErrDuplicateContentLength},
	{"CL plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", ErrInvalidContentLength},
	{"CL minus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ErrInvalidContentLength},
	{"CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", ErrInvalidContentLength},
	{"CL leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n", ErrInvalidContentLength},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", ErrInvalidContentLength},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", ErrInvalidContentLength},
	{"CL spaces only", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:   \r\n\r\n", ErrInvalidContentLength},
	{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", ErrInvalidContentLength},
	{"CL 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", ErrInvalidContentLength},
	{"CL decimal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", ErrInvalidContentLength},
	{"CL space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", ErrSpaceBeforeColon},

	// Line terminators and control bytes.
	{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ErrBareLF},
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", ErrBareLF},
	{"bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", ErrBareLF},
	{"bare CR request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", ErrBareCR},
	{"bare CR in target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", ErrBareCR},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", ErrBareCR},
	{"bare CR as terminator", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", ErrBareCR},
	{"bare CR line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", ErrBareCR},
	{"bare CR line first", "GET / HTTP/1.1\r\n\r\r\nHost: a\r\n\r\n", ErrBareCR},
	{"bare CR in name", "GET / HTTP/1.1\r\nHost: a\r\nX\r: a\r\n\r\n", ErrBareCR},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", ErrInvalidHeaderValue},
	{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: a\r\n\r\n", ErrInvalidHeaderName},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", ErrInvalidHeaderValue},
	{"ESC in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n", ErrInvalidHeaderValue},
	{"form feed in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x0cb\r\n\r\n", ErrInvalidHeaderValue},

	// Field names and lines.
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", ErrObsFold},
	{"space before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", ErrObsFold},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ErrSpaceBeforeColon},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", ErrEmptyHeaderName},
	{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", ErrMissingColon},
	{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", ErrInvalidHeaderName},
	{"bracket in name", "GET / HTTP/1.1\r\nHost: a\r\nX[1]: a\r\n\r\n", ErrInvalidHeaderName},
	{"utf8 in name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: a\r\n\r\n", ErrInvalidHeaderName},
	{"slash in name", "GET / HTTP/1.1\r\nHost: a\r\nX/Y: a\r\n\r\n", ErrInvalidHeaderName},

	// Connection.
	{"Connection names Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close, Content-Length\r\n\r\n", ErrConnectionEndToEnd},
	{"Connection names Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", ErrConnectionEndToEnd},
	{"Connection not a token", "GET / HTTP/1.1\r\nHost: a\r\nConnection: clo se\r\n\r\n", ErrInvalidConnection},

	// Host.
	{"missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", ErrMissingHost},
	{"duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrDuplicateHost},
	{"duplicate Host equal", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", ErrDuplicateHost},
	{"duplicate Host HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", ErrDuplicateHost},
	{"Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ErrInvalidHost},
	{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", ErrInvalidHost},
	{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ErrInvalidHost},
	{"Host two values", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", ErrInvalidHost},
	{"Host bad port", "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", ErrInvalidHost},
	{"Host port overflow", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", ErrInvalidHost},
	{"Host empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", ErrInvalidHost},
	{"Host bad pct", "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", ErrInvalidHost},
	{"Host unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", ErrInvalidHost},
	{"Host != absolute authority", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", ErrHostMismatch},
	{"Host port != absolute port", "GET http://a.example:8080/ HTTP/1.1\r\nHost: a.example:8081\r\n\r\n", ErrHostMismatch},
	{"Host default port wrong scheme", "GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n", ErrHostMismatch},
	{"Host != CONNECT authority", "CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", ErrHostMismatch},

	// Request line.
	{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", ErrInvalidVersion},
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ErrUnsupportedVersion},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", ErrUnsupportedVersion},
	{"HTTP/0.9 style", "GET /\r\n\r\n", ErrMalformedRequestLine},
	{"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", ErrInvalidVersion},
	{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", ErrInvalidVersion},
	{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMalformedRequestLine},
	{"leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMalformedRequestLine},
	{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidMethod},
	{"method with slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidMethod},
	{"method with NUL", "G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidMethod},
	{"method utf8", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidMethod},
	{"only method", "GET\r\n\r\n", ErrMalformedRequestLine},
	{"target with space", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidVersion},
	{"target with fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target with NUL", "GET /a\x00 HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target with tab", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target with DEL", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target utf8", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target bad pct", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target truncated pct", "GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"target relative", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"authority-form with GET", "GET a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", ErrInvalidTarget},
	{"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"CONNECT without port", "CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"CONNECT absolute", "CONNECT http://a.example:443/ HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"CONNECT userinfo", "CONNECT u@a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", ErrInvalidTarget},
	{"absolute empty host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", ErrInvalidTarget},
	{"absolute userinfo", "GET http://u:p@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"absolute no slashes", "GET http:a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"absolute bad path", "GET http://a.example/\xff HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"absolute bad scheme", "GET 1http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", ErrInvalidTarget},
	{"leading bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrBareLF},

	// Limits (defaults: 8 KiB request line, 60 KiB head, 100 fields).
	{"101 headers", "GET / HTTP/1.1\r\nHost: a\r\n" + manyHeaders(100) + "\r\n", ErrTooManyHeaders},
	{"head over 60 KiB", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 60<<10) + "\r\n\r\n", ErrHeadTooLarge},
	{"head over 60 KiB unterminated", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 61<<10), ErrHeadTooLarge},
	{"request line over 8 KiB", "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrStartLineTooLong},
	{"request line over 8 KiB unterminated", "GET /" + strings.Repeat("a", 9<<10), ErrStartLineTooLong},
	{"endless empty lines", strings.Repeat("\r\n", 5<<10), ErrStartLineTooLong},
}

// validRequests are edge cases that must parse; want is the rendered head (see String).
var validRequests = []struct {
	name string
	in   string
	want string
}{
	{"minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive [Host="a"]`},
	{"HTTP/1.0 no host", "GET /x HTTP/1.0\r\n\r\n",
		`GET /x HTTP/1.0 form=origin authority=<nil> path="/x" host=<nil> cl=-1`},
	{"HTTP/1.0 keep-alive", "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n",
		`GET /x HTTP/1.0 form=origin authority="h" path="/x" host="h" cl=-1 keepalive [Connection="Keep-Alive"] [Host="h"]`},
	{"HTTP/1.0 ignores Expect and Upgrade", "POST /x HTTP/1.0\r\nExpect: 100-continue\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\r\nx",
		`POST /x HTTP/1.0 form=origin authority=<nil> path="/x" host=<nil> cl=1 [Expect="100-continue"] [Connection="upgrade"] [Upgrade="websocket"] [Content-Length="1"]`},
	{"close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 [Host="a"] [Connection="keep-alive, CLOSE"]`},
	{"absolute-form", "GET http://Example.com:80/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
		`GET http://Example.com:80/p?q=1 HTTP/1.1 form=absolute authority="Example.com:80" path="/p?q=1" host="example.com" cl=-1 keepalive [Host="example.com"]`},
	{"absolute-form empty path", "GET https://a.example HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
		`GET https://a.example HTTP/1.1 form=absolute authority="a.example" path="" host="a.example:443" cl=-1 keepalive [Host="a.example:443"]`},
	{"absolute-form query only", "GET http://a.example?x HTTP/1.0\r\n\r\n",
		`GET http://a.example?x HTTP/1.0 form=absolute authority="a.example" path="?x" host=<nil> cl=-1`},
	{"absolute-form IPv6", "GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		`GET http://[::1]:8080/ HTTP/1.1 form=absolute authority="[::1]:8080" path="/" host="[::1]:8080" cl=-1 keepalive [Host="[::1]:8080"]`},
	{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		`OPTIONS * HTTP/1.1 form=asterisk authority="a" path=<nil> host="a" cl=-1 keepalive [Host="a"]`},
	{"CONNECT", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
		`CONNECT a.example:443 HTTP/1.1 form=authority authority="a.example:443" path=<nil> host="a.example:443" cl=-1 keepalive [Host="a.example:443"]`},
	{"CONNECT host without port", "CONNECT a.example:443 HTTP/1.1\r\nHost: A.example\r\n\r\n",
		`CONNECT a.example:443 HTTP/1.1 form=authority authority="a.example:443" path=<nil> host="A.example" cl=-1 keepalive [Host="A.example"]`},
	{"CONNECT IPv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
		`CONNECT [2001:db8::1]:443 HTTP/1.1 form=authority authority="[2001:db8::1]:443" path=<nil> host="[2001:db8::1]:443" cl=-1 keepalive [Host="[2001:db8::1]:443"]`},
	{"chunked POST", "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
		`POST /u HTTP/1.1 form=origin authority="a" path="/u" host="a" cl=-1 chunked keepalive [Host="a"] [Transfer-Encoding="Chunked"]`},
	{"CL zero", "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		`POST /u HTTP/1.1 form=origin authority="a" path="/u" host="a" cl=0 keepalive [Host="a"] [Content-Length="0"]`},
	{"CL max", "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n",
		`POST /u HTTP/1.1 form=origin authority="a" path="/u" host="a" cl=999999999999999999 keepalive [Host="a"] [Content-Length="999999999999999999"]`},
	{"CL with OWS", "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: \t 12 \t\r\n\r\n",
		`POST /u HTTP/1.1 form=origin authority="a" path="/u" host="a" cl=12 keepalive [Host="a"] [Content-Length="12"]`},
	{"empty values", "GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="" path="/" host="" cl=-1 keepalive [Host=""] [X-Empty=""] [X-Spaces=""]`},
	{"inner spaces and tabs", "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11;\tLinux)  x\r\n\r\n",
		"GET / HTTP/1.1 form=origin authority=\"a\" path=\"/\" host=\"a\" cl=-1 keepalive [Host=\"a\"] [User-Agent=\"Mozilla/5.0 (X11;\tLinux)  x\"]"},
	{"obs-text", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \x80\xff\r\n\r\n",
		"GET / HTTP/1.1 form=origin authority=\"a\" path=\"/\" host=\"a\" cl=-1 keepalive [Host=\"a\"] [X-Name=\"caf\xc3\xa9 \x80\xff\"]"},
	{"no space after colon", "GET / HTTP/1.1\r\nHost:a\r\nX:y\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive [Host="a"] [X="y"]`},
	{"token chars in name", "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09aZ: v\r\nX_Under: u\r\n\r\n",
		"GET / HTTP/1.1 form=origin authority=\"a\" path=\"/\" host=\"a\" cl=-1 keepalive [Host=\"a\"] [!#$%&'*+-.^_`|~09aZ=\"v\"] [X_Under=\"u\"]"},
	{"extension method", "PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n",
		`PROPFIND /d HTTP/1.1 form=origin authority="a" path="/d" host="a" cl=-1 keepalive [Host="a"]`},
	{"lenient target chars", "GET /a/{b}|c\"d\"^e`f?x=[1]&y=%2F HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a/{b}|c\"d\"^e`f?x=[1]&y=%2F HTTP/1.1 form=origin authority=\"a\" path=\"/a/{b}|c\"d\"^e`f?x=[1]&y=%2F\" host=\"a\" cl=-1 keepalive [Host=\"a\"]"},
	{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive [Host="a"]`},
	{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		`GET /ws HTTP/1.1 form=origin authority="a" path="/ws" host="a" cl=-1 keepalive upgrade="websocket" [Host="a"] [Connection="Upgrade"] [Upgrade="websocket"]`},
	{"upgrade h2c", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive upgrade="h2c" [Host="a"] [Connection="Upgrade, HTTP2-Settings"] [Upgrade="h2c"] [HTTP2-Settings="AAMAAABkAAQAAP__"]`},
	{"Upgrade without Connection token", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive [Host="a"] [Upgrade="websocket"]`},
	{"empty Upgrade is no upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 keepalive [Host="a"] [Connection="upgrade"] [Upgrade=""]`},
	{"expect 100-continue", "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
		`PUT /f HTTP/1.1 form=origin authority="a" path="/f" host="a" cl=3 keepalive expect100 [Host="a"] [Expect="100-Continue"] [Content-Length="3"]`},
	{"connection empty elements", "GET / HTTP/1.1\r\nHost: a\r\nConnection: , ,close,\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="a" path="/" host="a" cl=-1 [Host="a"] [Connection=", ,close,"]`},
	{"100 headers", "GET / HTTP/1.1\r\n" + manyHeaders(99) + "Host: a\r\n\r\n", ""},
	{"host default port", "GET http://a.example/ HTTP/1.1\r\nHost: A.EXAMPLE:80\r\n\r\n",
		`GET http://a.example/ HTTP/1.1 form=absolute authority="a.example" path="/" host="A.EXAMPLE:80" cl=-1 keepalive [Host="A.EXAMPLE:80"]`},
	{"host pct-encoded", "GET / HTTP/1.1\r\nHost: xn--caf-dma.example%2e\r\n\r\n",
		`GET / HTTP/1.1 form=origin authority="xn--caf-dma.example%2e" path="/" host="xn--caf-dma.example%2e" cl=-1 keepalive [Host="xn--caf-dma.example%2e"]`},
}

func TestRequestHostile(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	for _, tc := range hostileRequests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := p.Parse([]byte(tc.in), &h)
			if n != 0 || !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %d, %v; want error %v", n, err, tc.want)
			}
			if got := sentinelOf(t, err); got != tc.want {
				t.Fatalf("sentinel %v, want %v", got, tc.want)
			}
			// The same error whatever the split: byte by byte through a fresh parser.
			if err2 := feedRequestBytewise(t, []byte(tc.in)); sentinelOf(t, err2) != tc.want {
				t.Fatalf("bytewise: %v, want %v", err2, tc.want)
			}
		})
	}
}

// feedRequestBytewise feeds growing prefixes of in one byte at a time and returns the first
// error; it fails the test if the head completes.
func feedRequestBytewise(t *testing.T, in []byte) error {
	t.Helper()
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	for i := 1; i <= len(in); i++ {
		n, err := p.Parse(in[:i], &h)
		if err != nil {
			return err
		}
		if n != 0 {
			t.Fatalf("prefix %d parsed as a complete head of %d bytes", i, n)
		}
	}
	return nil
}

func TestRequestValid(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	for _, tc := range validRequests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			n, err := p.Parse(in, &h)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantN := strings.Index(tc.in, "\r\n\r\n") + 4
			if tc.name == "leading empty lines" {
				wantN = len(tc.in)
			}
			if n != wantN {
				t.Fatalf("n = %d, want %d", n, wantN)
			}
			if tc.want != "" && describe(&h) != tc.want {
				t.Fatalf("head\n got %s\nwant %s", describe(&h), tc.want)
			}
			// Every field is a subslice of the input: no copies.
			for _, f := range h.Headers {
				if !within(f.Name, in) || !within(f.Value, in) {
					t.Fatalf("field %q is not a subslice of the input", f.Name)
				}
			}
			if !within(h.Method, in) || !within(h.Target, in) {
				t.Fatal("request line is not referenced in the input")
			}
			checkSplits(t, in, n, describe(&h))
		})
	}
}

// within reports whether b (if non-empty) lies inside buf's memory.
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return true
	}
	for i := range buf {
		if &buf[i] == &b[0] {
			return i+len(b) <= len(buf)
		}
	}
	return false
}

// checkSplits feeds in byte by byte and in two parts at every split through one parser per
// strategy, each time copying the prefix into a fresh buffer (as a transport that moves
// unconsumed bytes would), and requires the same head and length.
func checkSplits(t *testing.T, in []byte, n int, want string) {
	t.Helper()
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	// Byte by byte.
	for i := 1; i <= len(in); i++ {
		buf := append([]byte(nil), in[:i]...)
		got, err := p.Parse(buf, &h)
		if err != nil {
			t.Fatalf("bytewise prefix %d: %v", i, err)
		}
		if got != 0 {
			if got != n || i != n {
				t.Fatalf("bytewise: complete at prefix %d with n=%d, want n=%d", i, got, n)
			}
			if describe(&h) != want {
				t.Fatalf("bytewise head\n got %s\nwant %s", describe(&h), want)
			}
			break
		}
		if i >= n {
			t.Fatalf("bytewise: prefix %d >= %d still incomplete", i, n)
		}
	}
	// Two parts at every split point.
	for split := 0; split <= n; split++ {
		p.Reset()
		got, err := p.Parse(append([]byte(nil), in[:split]...), &h)
		if err != nil || (got != 0 && split < n) {
			t.Fatalf("split %d first part: n=%d err=%v", split, got, err)
		}
		if got == 0 {
			got, err = p.Parse(append([]byte(nil), in...), &h)
		}
		if err != nil || got != n || describe(&h) != want {
			t.Fatalf("split %d: n=%d err=%v head %s", split, got, err, describe(&h))
		}
	}
}

// A parser that reached "need more" examines only the new bytes next time: the scan
// position never moves back, so a head dribbled in one byte at a time costs O(n).
func TestRequestResumeNoRescan(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 50<<10) + "\r\n\r\n")
	for i := 1; i < len(in); i++ {
		n, err := p.Parse(in[:i], &h)
		if n != 0 || err != nil {
			t.Fatalf("prefix %d: %d %v", i, n, err)
		}
		if p.scan.pos != i {
			t.Fatalf("after prefix %d scan position is %d", i, p.scan.pos)
		}
	}
	if n, err := p.Parse(in, &h); n != len(in) || err != nil {
		t.Fatalf("final: %d %v", n, err)
	}
}

func TestRequestPipelined(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := []byte("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	var paths []string
	for len(in) > 0 {
		n, err := p.Parse(in, &h)
		if err != nil || n == 0 {
			t.Fatalf("Parse: %d %v", n, err)
		}
		paths = append(paths, string(h.Path))
		in = in[n:]
		kind, length := RequestBody(&h)
		if kind == BodyLength {
			var d LengthDecoder
			d.Reset(length)
			body := d.Decode(in)
			if string(body) != "hi" || !d.Done() {
				t.Fatalf("body %q done=%v", body, d.Done())
			}
			in = in[len(body):]
		}
	}
	if strings.Join(paths, ",") != "/1,/2,/3" || h.KeepAlive {
		t.Fatalf("paths %v keepalive %v", paths, h.KeepAlive)
	}
}

func TestRequestLimitsConfigurable(t *testing.T) {
	l := Limits{MaxStartLine: 64, MaxHeadBytes: 256, MaxHeaders: 3}
	p := mustRequestParser(t, l)
	var h RequestHead
	cases := []struct {
		in   string
		want error
	}{
		{"GET /" + strings.Repeat("a", 50) + " HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", nil},
		{"GET /" + strings.Repeat("a", 60) + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrStartLineTooLong},
		{"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ErrTooManyHeaders},
		{"GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("a", 230) + "\r\n\r\n", ErrHeadTooLarge},
	}
	for i, tc := range cases {
		_, err := p.Parse([]byte(tc.in), &h)
		if sentinelOf(t, err) != tc.want {
			t.Errorf("case %d: %v, want %v", i, err, tc.want)
		}
	}
	// The head limit counts the final CRLF: exactly MaxHeadBytes passes, one more fails.
	base := "GET / HTTP/1.1\r\nHost: a\r\nA: \r\n\r\n"
	exact := strings.Replace(base, "A: ", "A: "+strings.Repeat("a", 256-len(base)), 1)
	if n, err := p.Parse([]byte(exact), &h); err != nil || n != 256 {
		t.Fatalf("exact limit: %d %v", n, err)
	}
	over := strings.Replace(exact, "A: ", "A: a", 1)
	if _, err := p.Parse([]byte(over), &h); sentinelOf(t, err) != ErrHeadTooLarge {
		t.Fatalf("limit+1: %v", err)
	}
	if err := feedRequestBytewiseLimits(t, []byte(over), l); sentinelOf(t, err) != ErrHeadTooLarge {
		t.Fatalf("limit+1 bytewise: %v", err)
	}
}

func feedRequestBytewiseLimits(t *testing.T, in []byte, l Limits) error {
	t.Helper()
	p := mustRequestParser(t, l)
	var h RequestHead
	for i := 1; i <= len(in); i++ {
		if _, err := p.Parse(in[:i], &h); err != nil {
			return err
		}
	}
	return nil
}

func TestRequestErrorOffsetAndStatus(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	_, err := p.Parse([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: a\x00\r\n\r\n"), &h)
	var e *Error
	if !errors.As(err, &e) || e.Offset != 29 {
		t.Fatalf("error %v, want offset 29", err)
	}
	if !strings.Contains(err.Error(), "at byte 29") {
		t.Fatalf("message %q", err.Error())
	}
	statuses := map[error]int{
		ErrStartLineTooLong:                  414,
		ErrHeadTooLarge:                      431,
		ErrTooManyHeaders:                    431,
		ErrUnsupportedTransferEncoding:       501,
		ErrUnsupportedVersion:                505,
		ErrBareLF:                            400,
		ErrContentLengthWithTransferEncoding: 400,
	}
	for s, want := range statuses {
		if got := StatusCode(&Error{Err: s}); got != want {
			t.Errorf("StatusCode(%v) = %d, want %d", s, got, want)
		}
	}
}

func TestRequestHeadReuseNoAlloc(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := []byte(typicalRequest)
	if _, err := p.Parse(in, &h); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := p.Parse(in, &h); err != nil || n != len(in) {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per parse, want 0", allocs)
	}
	// Incomplete input does not allocate either.
	allocs = testing.AllocsPerRun(100, func() {
		p.Reset()
		if n, err := p.Parse(in[:200], &h); err != nil || n != 0 {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per partial parse, want 0", allocs)
	}
}

func TestHeadersHelpers(t *testing.T) {
	p := mustRequestParser(t, Limits{})
	var h RequestHead
	in := "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nConnection: Foo\r\nX-Secret: s\r\nFoo: f\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Empty:\r\nAccept: */*\r\n\r\n"
	if _, err := p.Parse([]byte(in), &h); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"connection": true, "Keep-Alive": true, "te": true, "Transfer-Encoding": true, "upgrade": true,
		"proxy-connection": true, "x-secret": true, "FOO": true, "accept": false, "host": false, "x-empty": false,
	} {
		if got := h.Headers.IsHopByHop([]byte(name)); got != want {
			t.Errorf("IsHopByHop(%q) = %v, want %v", name, got, want)
		}
	}
	if string(h.Headers.Get("accept")) != "*/*" || h.Headers.Get("missing") != nil {
		t.Fatal("Get")
	}
	if !h.Headers.Has("x-empty") || h.Headers.Has("missing") {
		t.Fatal("Has")
	}
}
