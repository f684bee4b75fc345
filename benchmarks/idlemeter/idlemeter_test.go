package idlemeter

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

const okResponse = "HTTP/1.1 200 OK\r\nServer: t\r\nContent-Length: 12\r\n\r\nhello world\n"

// server answers one request per connection with resp and records peers' addresses.
// When closeAfter is set it closes each connection after answering.
type server struct {
	ln      net.Listener
	mu      sync.Mutex
	sources map[string]bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newServer(t *testing.T, resp string, closeAfter bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, sources: map[string]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.sources[c.RemoteAddr().(*net.TCPAddr).IP.String()] = true
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, resp)
				if closeAfter {
					_ = c.Close()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			_ = c.Close()
		}
	})
	return s
}

func TestRunOpensDistinctSourcesAndMeasures(t *testing.T) {
	srv := newServer(t, okResponse, false)
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{
		Addr: srv.ln.Addr().String(), N: n, FirstSource: netip.MustParseAddr("127.9.0.250"),
		Hold: 10 * time.Millisecond, PID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != n {
		t.Fatalf("Conns = %d, want %d", res.Conns, n)
	}
	srv.mu.Lock()
	got := len(srv.sources)
	srv.mu.Unlock()
	if got != n {
		t.Fatalf("server saw %d distinct source addresses, want %d", got, n)
	}
	if res.BaselineKB <= 0 || res.LoadedKB <= 0 {
		t.Fatalf("memory not read: %+v", res)
	}
	if res.PerConnKB != float64(res.LoadedKB-res.BaselineKB)/n {
		t.Fatalf("PerConnKB %v does not match %+v", res.PerConnKB, res)
	}
}

func TestRunFailsWhenServerClosesDuringHold(t *testing.T) {
	srv := newServer(t, okResponse, true)
	_, err := Run(context.Background(), Config{
		Addr: srv.ln.Addr().String(), N: 20, FirstSource: netip.MustParseAddr("127.10.0.1"),
		Hold: 200 * time.Millisecond,
	})
	if !errors.Is(err, ErrConnsFailed) || !strings.Contains(err.Error(), "closed by the server") {
		t.Fatalf("err = %v, want ErrConnsFailed for connections closed during the hold", err)
	}
}

func TestRunFailsOnBadStatus(t *testing.T) {
	srv := newServer(t, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", false)
	_, err := Run(context.Background(), Config{
		Addr: srv.ln.Addr().String(), N: 5, FirstSource: netip.MustParseAddr("127.11.0.1"),
	})
	if !errors.Is(err, ErrConnsFailed) || !errors.Is(err, ErrResponse) {
		t.Fatalf("err = %v, want ErrConnsFailed wrapping ErrResponse", err)
	}
}

func TestRunFailsWhenNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err = Run(context.Background(), Config{Addr: addr, N: 3, FirstSource: netip.MustParseAddr("127.12.0.1")})
	if !errors.Is(err, ErrConnsFailed) {
		t.Fatalf("err = %v, want ErrConnsFailed", err)
	}
}

func TestSources(t *testing.T) {
	got, err := Sources(netip.MustParseAddr("127.1.0.253"), 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.1.0.253", "127.1.0.254", "127.1.1.1", "127.1.1.2"}
	for i, a := range got {
		if a.String() != want[i] {
			t.Fatalf("Sources = %v, want %v", got, want)
		}
	}
	if _, err := Sources(netip.MustParseAddr("127.255.255.250"), 10); !errors.Is(err, ErrSourceRange) {
		t.Fatalf("past 127/8: err = %v, want ErrSourceRange", err)
	}
	for _, bad := range []string{"10.0.0.1", "::1"} {
		if _, err := Sources(netip.MustParseAddr(bad), 1); !errors.Is(err, ErrSourceRange) {
			t.Fatalf("Sources(%s): err = %v, want ErrSourceRange", bad, err)
		}
	}
	if err := (Config{Addr: "x:1", N: 0, FirstSource: netip.MustParseAddr("127.0.0.1")}).Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("N=0: err = %v, want ErrConfig", err)
	}
}

// chunkConn serves a fixed byte stream a few bytes per Read.
type chunkConn struct {
	net.Conn
	data []byte
	step int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.step, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		step int
		ok   bool
	}{
		{okResponse, 1, true},
		{okResponse, 1000, true},
		{"HTTP/1.0 200 OK\r\ncontent-length:  0 \r\n\r\n", 3, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello", 4, false},               // short body
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello", 100, false},              // bytes past the body
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 100, false}, // no length
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 100, false},
		{"SSH-2.0-x\r\n\r\n", 100, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1", 100, false}, // EOF in the head
	} {
		err := ReadResponse(&chunkConn{data: []byte(tc.in), step: tc.step}, make([]byte, 256))
		if (err == nil) != tc.ok {
			t.Errorf("ReadResponse(%q, step %d) err = %v, want ok=%v", tc.in, tc.step, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrResponse) {
			t.Errorf("ReadResponse(%q) err = %v, want ErrResponse", tc.in, err)
		}
	}
	long := "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 300) + "\r\nContent-Length: 0\r\n\r\n"
	if err := ReadResponse(&chunkConn{data: []byte(long), step: 50}, make([]byte, 64)); !errors.Is(err, ErrResponse) {
		t.Errorf("oversized head: err = %v, want ErrResponse", err)
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 12"))
	f.Add([]byte("HTTP/1.1 200"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: -1"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, head []byte) {
		n, err := parseHead(head)
		if err == nil && n < 0 {
			t.Fatalf("negative length %d accepted", n)
		}
		if err != nil && !errors.Is(err, ErrResponse) {
			t.Fatalf("err %v is not ErrResponse", err)
		}
	})
}
