package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/benchmarks/grpcload"
	"github.com/strait-proxy/strait/benchmarks/idlemeter"
)

// ErrExited is returned when a process the harness started exited before it was stopped.
var ErrExited = errors.New("bench: process exited early")

// ErrNotReady is returned when a server did not answer correctly in time.
var ErrNotReady = errors.New("bench: server not ready")

// Proc is a process the harness started, pinned to one CPU, in its own process group.
type Proc struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProc runs argv under `taskset -c cpu`, with stdout and stderr appended to logPath and
// extra environment variables env. The process gets its own process group, and is killed if
// the harness dies.
func StartProc(name string, cpu int, env []string, logPath string, argv ...string) (*Proc, error) {
	full := append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out io.Writer = io.Discard
	var f *os.File
	if logPath != "" {
		var err error
		f, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("bench: log for %s: %w", name, err)
		}
		out = f
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		if f != nil {
			_ = f.Close()
		}
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if f != nil {
			_ = f.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id (taskset execs the command, so it is the proxy itself).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs the group. It
// returns ErrExited if the process had already exited on its own.
func (p *Proc) Stop(grace time.Duration) error {
	if done, err := p.Exited(); done {
		return fmt.Errorf("%w: %s: %v (log %s)", ErrExited, p.Name, err, p.Log)
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Reap stragglers in the group (nginx workers) even if the leader went first.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// Procs tracks every running process so an interrupt can stop them all.
type Procs struct {
	mu   sync.Mutex
	live map[*Proc]bool
}

// Add tracks p.
func (ps *Procs) Add(p *Proc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.live == nil {
		ps.live = map[*Proc]bool{}
	}
	ps.live[p] = true
}

// Stop stops p and forgets it.
func (ps *Procs) Stop(p *Proc, grace time.Duration) error {
	ps.mu.Lock()
	delete(ps.live, p)
	ps.mu.Unlock()
	return p.Stop(grace)
}

// StopAll stops every tracked process.
func (ps *Procs) StopAll(grace time.Duration) {
	ps.mu.Lock()
	live := ps.live
	ps.live = nil
	ps.mu.Unlock()
	for p := range live {
		_ = p.Stop(grace)
	}
}

// Protocol is how the harness talks to a server to see that it is ready.
type Protocol int

// Protocols.
const (
	// ProtoHTTP1: GET / over HTTP/1.1 answers 200 "hello world\n".
	ProtoHTTP1 Protocol = iota
	// ProtoH2C: GET / over cleartext HTTP/2 (prior knowledge) answers 200 "hello world\n".
	ProtoH2C
	// ProtoGRPC: a TestService/UnaryCall answers "hello world\n".
	ProtoGRPC
)

// protocolOf is the protocol requests to a backend kind (and the proxies in front of it)
// speak.
func protocolOf(b Backend) Protocol {
	switch b {
	case BackendH2C:
		return ProtoH2C
	case BackendGRPC:
		return ProtoGRPC
	}
	return ProtoHTTP1
}

// WaitReady waits until addr answers correctly over proto, through whatever proxy is in
// front of the backend, failing early if p (when non-nil) exits.
func WaitReady(ctx context.Context, proto Protocol, addr string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%w: %s exited: %v (log %s)", ErrNotReady, p.Name, err, p.Log)
			}
		}
		switch proto {
		case ProtoH2C:
			last = probeH2C(ctx, addr)
		case ProtoGRPC:
			last = grpcload.Probe(ctx, addr, 2*time.Second)
		default:
			last = probe(addr)
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: %s after %v: %w", ErrNotReady, addr, timeout, last)
}

// WaitHTTP is WaitReady over HTTP/1.1.
func WaitHTTP(ctx context.Context, addr string, p *Proc, timeout time.Duration) error {
	return WaitReady(ctx, ProtoHTTP1, addr, p, timeout)
}

// probeH2C sends one GET over cleartext HTTP/2 and checks the response.
func probeH2C(ctx context.Context, addr string) error {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(b) != "hello world\n" {
		return fmt.Errorf("%w: h2c %d %q", idlemeter.ErrResponse, resp.StatusCode, b)
	}
	return nil
}

// probe sends one request and checks the response body.
func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		return err
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) || !bytes.HasSuffix(b, []byte("\r\n\r\nhello world\n")) {
		return fmt.Errorf("%w: unexpected response %q", idlemeter.ErrResponse, b)
	}
	return nil
}

// FreePort returns a TCP port on host that was free a moment ago.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
