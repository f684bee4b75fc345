// Package server assembles a running Strait from a configuration and explicit lists of
// extensions: it loads and validates the bootstrap, builds the transport, the clusters and
// every listener's filter chain, serves, and drains on shutdown.
//
// Who may call it: cmd/strait, which passes the built-in transports, filters and codecs, and
// user programs that add their own stages to those lists (see examples/customfilter). The
// package names no transport backend and no extension itself: everything comes in through
// Options, so a user's main decides exactly what exists, in one ordered list each.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// DefaultDrainTimeout bounds how long shutdown waits for open connections.
const DefaultDrainTimeout = 15 * time.Second

// ErrUnknownTransport is returned when the requested transport is not in Options.Transports.
var ErrUnknownTransport = errors.New("server: unknown transport")

// Transport is one transport backend a program offers.
type Transport struct {
	Name string
	New  reactor.Factory
	// SpareP says the backend's event loops block in the kernel (epoll_wait) on Ps of their
	// own. Go's scheduler takes a P away from a thread blocked in a system call when no
	// other P is idle, so a loop returning from epoll_wait must then wait for a P back; a
	// process sized by Options.SizeScheduler keeps one P more than the loops so that never
	// happens (see SchedulerSize).
	SpareP bool
}

// Extensions are everything a program can configure, each list in registration order. A
// duplicate name or type URL is an error.
type Extensions struct {
	Transports     []Transport
	NetworkFilters []discovery.NetworkFilter
	HTTPFilters    []discovery.HTTPFilter
	Codecs         []protocol.Codec
	// DefaultTransport is used when neither Options nor the configuration names one; empty
	// means the first of Transports.
	DefaultTransport string
}

// Options say what to run.
type Options struct {
	// ConfigName names the configuration in errors; ConfigData is its content. When
	// ConfigData is nil, ConfigName is a file path to read.
	ConfigName string
	ConfigData []byte
	// Transport overrides the configuration's transport when set.
	Transport string
	// Logger receives structured logs; nil builds one from the configuration's log level on
	// os.Stderr.
	Logger *slog.Logger
	// LogLevel, when set, overrides the configuration's level for the built logger.
	LogLevel *slog.Level
	// LogFormat is "text" (default) or "json" for the built logger.
	LogFormat string
	// LogOutput is where the built logger writes; nil means os.Stderr.
	LogOutput io.Writer
	// Ready is called once every listener is bound, before serving.
	Ready func(s *Server)
	// SizeScheduler lets Run set GOMAXPROCS (process-wide) from the configuration; only a
	// program that is Strait and nothing else should (cmd/strait does; tests do not).
	SizeScheduler bool
}

// Server is a running Strait.
type Server struct {
	Snapshot  *discovery.Snapshot
	Listeners []*pipeline.Listener
	Stats     *pipeline.Stats
	Transport string
	Log       *slog.Logger
}

// Registries builds the configuration and codec registries from ext.
func (ext *Extensions) Registries() (*discovery.Registry, *protocol.Registry, error) {
	codecs := protocol.NewRegistry()
	for _, c := range ext.Codecs {
		if err := codecs.Register(c); err != nil {
			return nil, nil, err
		}
	}
	reg := discovery.NewRegistry()
	reg.SetCodecs(codecs.Names())
	if err := reg.Register(ext.NetworkFilters...); err != nil {
		return nil, nil, err
	}
	if err := reg.RegisterHTTPFilters(ext.HTTPFilters...); err != nil {
		return nil, nil, err
	}
	return reg, codecs, nil
}

func (ext *Extensions) transport(name string) (Transport, error) {
	names := make([]string, 0, len(ext.Transports))
	for _, t := range ext.Transports {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Transport{}, fmt.Errorf("%w %q (want %s)", ErrUnknownTransport, name, strings.Join(names, ", "))
}

// SchedulerSize is the GOMAXPROCS a process sized by Options.SizeScheduler runs with, given
// the GOMAXPROCS environment variable (env, "" when unset) and the current value: the
// environment when set; else the configured gomaxprocs; else, for a transport that wants
// a spare P, at least one more than its event loops (one event loop pinned to one CPU, the
// benchmark setup, runs with 2); else the current value (Go's default: the CPUs this process
// may run on).
func SchedulerSize(rt discovery.RuntimeConfig, t Transport, env string, current int) int {
	switch {
	case env != "":
		return current
	case rt.GoMaxProcs > 0:
		return rt.GoMaxProcs
	case t.SpareP:
		return max(current, max(rt.Loops, 1)+1)
	}
	return current
}

// TransportNames lists the offered transports in order.
func (ext *Extensions) TransportNames() []string {
	names := make([]string, 0, len(ext.Transports))
	for _, t := range ext.Transports {
		names = append(names, t.Name)
	}
	return names
}

func load(o *Options, reg *discovery.Registry) (*discovery.Snapshot, error) {
	if o.ConfigData != nil {
		return discovery.Parse(o.ConfigName, o.ConfigData, reg)
	}
	return discovery.Load(o.ConfigName, reg)
}

// Validate loads and checks a configuration without binding anything.
func Validate(o Options, ext Extensions) error {
	reg, _, err := ext.Registries()
	if err != nil {
		return err
	}
	snap, err := load(&o, reg)
	if err != nil {
		return err
	}
	if t := string(snap.Runtime.Transport); t != "" {
		if _, err := ext.transport(t); err != nil {
			return fmt.Errorf("%s: %w", o.ConfigName, err)
		}
	}
	return nil
}

// NewLogger builds the logger Run uses when Options.Logger is nil.
func NewLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	ho := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

// Run loads the configuration, starts every listener and serves until ctx is done, then
// drains: listeners stop accepting and open connections get up to the drain timeout to
// finish. Nothing is bound when the configuration is invalid.
func Run(ctx context.Context, o Options, ext Extensions) error {
	reg, codecs, err := ext.Registries()
	if err != nil {
		return err
	}
	snap, err := load(&o, reg)
	if err != nil {
		return err
	}
	rt := snap.Runtime
	log := o.Logger
	if log == nil {
		level := rt.LogLevel
		if o.LogLevel != nil {
			level = *o.LogLevel
		}
		out := o.LogOutput
		if out == nil {
			out = os.Stderr
		}
		if log, err = NewLogger(out, level, o.LogFormat); err != nil {
			return err
		}
	}

	name := o.Transport // an explicit choice wins over the configuration
	if name == "" {
		name = string(rt.Transport)
	}
	if name == "" {
		name = ext.DefaultTransport
	}
	if name == "" && len(ext.Transports) > 0 {
		name = ext.Transports[0].Name
	}
	tdef, err := ext.transport(name)
	if err != nil {
		return err
	}
	factory := tdef.New
	if o.SizeScheduler {
		env := os.Getenv("GOMAXPROCS")
		was := runtime.GOMAXPROCS(0)
		if n := SchedulerSize(rt, tdef, env, was); n != was {
			runtime.GOMAXPROCS(n)
			log.Info("GOMAXPROCS set", "from", was, "to", n, "loops", max(rt.Loops, 1), "transport", name)
		}
	}
	workers := rt.WorkerPoolSize
	if workers <= 0 {
		workers = 1024
	}
	pool := pipeline.NewPool("strait-requests", workers, 4*workers, log)
	topts := rt.ReactorOptions()
	topts.Runner = func(fn func()) {
		// Transport work (a connection's queued callbacks) is already admitted: run it even
		// when the request pool is saturated, never drop it.
		if !pool.Go(fn) {
			go fn()
		}
	}
	if err := topts.Validate(); err != nil {
		return err
	}
	tr, err := factory(topts)
	if err != nil {
		return fmt.Errorf("transport %s: %w", name, err)
	}
	defer tr.Close()

	stats := pipeline.NewStats()
	cm, err := discovery.NewClusterManager(snap.Clusters, discovery.ClusterManagerOptions{Logger: log, Stats: stats})
	if err != nil {
		return err
	}
	defer cm.Close()
	// DNS clusters resolve before listeners open, so the first connections find hosts.
	readyCtx, cancelReady := context.WithTimeout(ctx, 10*time.Second)
	if err := cm.Ready(readyCtx); err != nil {
		log.Warn("clusters not ready before listening", "err", err)
	}
	cancelReady()

	deps := &pipeline.Deps{
		Logger:    log,
		Clusters:  cm,
		Transport: tr,
		Go:        pool.Go,
		Stats:     stats,
		Codecs:    codecs,
	}
	srv := &Server{Snapshot: snap, Stats: stats, Transport: name, Log: log}
	for _, lc := range snap.Listeners {
		l, err := pipeline.NewListener(lc, deps)
		if err != nil {
			return err
		}
		srv.Listeners = append(srv.Listeners, l)
	}
	for _, l := range srv.Listeners {
		if err := l.Start(); err != nil {
			for _, started := range srv.Listeners {
				_ = started.StopAccepting()
			}
			return err
		}
		log.Info("listening", "listener", l.Name(), "address", l.Addr().String(), "transport", name)
	}
	if o.Ready != nil {
		o.Ready(srv)
	}

	<-ctx.Done()
	drain := rt.DrainTimeout
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	log.Info("draining", "timeout", drain.String())
	for _, l := range srv.Listeners {
		if err := l.StopAccepting(); err != nil {
			log.Warn("stop accepting", "listener", l.Name(), "err", err)
		}
	}
	deadline := time.Now().Add(drain)
	for _, l := range srv.Listeners {
		if !l.WaitIdle(deadline) {
			log.Warn("drain timeout: closing open connections", "listener", l.Name(), "open", l.ActiveConnections())
		}
	}
	log.Info("stopped")
	return nil
}

// Addr returns the bound address of the named listener, or nil.
func (s *Server) Addr(listener string) net.Addr {
	for _, l := range s.Listeners {
		if l.Name() == listener {
			return l.Addr()
		}
	}
	return nil
}
