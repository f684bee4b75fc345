package main

import (
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strait-proxy/strait/pipeline/server"
)

// defaultBootstrap is the embedded default configuration. DEMO_UPSTREAM_PORT is replaced with
// the port of the demo upstream strait starts for it.
//
//go:embed default.yaml
var defaultBootstrap string

// demoUpstream is the small HTTP server the embedded default configuration forwards to, so
// `strait` with no arguments works on a machine with nothing else running.
type demoUpstream struct {
	ln   net.Listener
	srv  *http.Server
	addr string
}

func startDemoUpstream() (*demoUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from Strait's demo upstream.\nYou sent %s %s with Host %q, through Strait.\n",
			r.Method, r.URL.RequestURI(), r.Host)
	})
	d := &demoUpstream{
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr().String(),
	}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *demoUpstream) bootstrap() []byte {
	port := strconv.Itoa(d.ln.Addr().(*net.TCPAddr).Port)
	return []byte(strings.ReplaceAll(defaultBootstrap, "DEMO_UPSTREAM_PORT", port))
}

func (d *demoUpstream) Close() { _ = d.srv.Close() }

// printTryIt tells a newcomer what runs and how to try it.
func (d *demoUpstream) printTryIt(w io.Writer, s *server.Server) {
	if len(s.Listeners) == 0 {
		return
	}
	l := s.Listeners[0]
	fmt.Fprintf(w, "Strait is running its embedded default configuration (transport %s).\n", s.Transport)
	fmt.Fprintf(w, "  listener %q on %s forwards to the demo upstream on %s\n", l.Name(), l.Addr(), d.addr)
	fmt.Fprintf(w, "Try it:\n  curl http://%s/\nStop with Ctrl-C.\n", l.Addr())
}
