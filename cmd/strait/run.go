package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/pipeline"
)

// defaultDrainTimeout bounds how long SIGTERM waits for open connections.
const defaultDrainTimeout = 15 * time.Second

type options struct {
	configPath string
	transport  string
	logLevel   string
	logFormat  string
	stdout     io.Writer
	stderr     io.Writer
}

// registry builds the filter registry from one ordered list of every built-in extension.
func registry() (*discovery.Registry, error) {
	reg := discovery.NewRegistry()
	if err := reg.Register(builtinNetworkFilters()...); err != nil {
		return nil, err
	}
	return reg, nil
}

func validate(path string) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	snap, err := discovery.Load(path, reg)
	if err != nil {
		return err
	}
	if t := string(snap.Runtime.Transport); t != "" {
		if _, err := transportFactory(t); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// run loads the configuration, starts every listener and serves until ctx is done, then
// drains: listeners stop accepting, open connections get up to the drain timeout to finish.
func run(ctx context.Context, o options) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	var (
		snap *discovery.Snapshot
		demo *demoUpstream
	)
	if o.configPath == "" {
		demo, err = startDemoUpstream()
		if err != nil {
			return fmt.Errorf("embedded default configuration: %w", err)
		}
		defer demo.Close()
		snap, err = discovery.Parse("embedded default configuration", demo.bootstrap(), reg)
	} else {
		snap, err = discovery.Load(o.configPath, reg)
	}
	if err != nil {
		return err
	}
	rt := snap.Runtime
	level := rt.LogLevel
	if o.logLevel != "" {
		if level, err = parseLevel(o.logLevel); err != nil {
			return err
		}
	}
	log, err := newLogger(o.stderr, level, o.logFormat)
	if err != nil {
		return err
	}

	name := o.transport // the flag wins over the configuration
	if name == "" {
		name = string(rt.Transport)
	}
	if name == "" {
		name = defaultTransport
	}
	factory, err := transportFactory(name)
	if err != nil {
		return err
	}
	pool := pipeline.NewPool("strait-requests", poolWorkers(rt.WorkerPoolSize), 4*poolWorkers(rt.WorkerPoolSize), log)
	topts := rt.ReactorOptions()
	topts.Runner = func(fn func()) { runOrInline(pool, fn) }
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
	err = cm.Ready(readyCtx)
	cancelReady()
	if err != nil {
		log.Warn("clusters not ready before listening", "err", err)
	}

	deps := &pipeline.Deps{
		Logger:    log,
		Clusters:  cm,
		Transport: tr,
		Go:        pool.Go,
		Stats:     stats,
		Codecs:    codecs(),
	}
	listeners := make([]*pipeline.Listener, 0, len(snap.Listeners))
	for _, lc := range snap.Listeners {
		l, err := pipeline.NewListener(lc, deps)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		if err := l.Start(); err != nil {
			for _, started := range listeners {
				_ = started.StopAccepting()
			}
			return err
		}
		log.Info("listening", "listener", l.Name(), "address", l.Addr().String(), "transport", name)
	}
	if demo != nil {
		fmt.Fprintf(o.stdout, "Strait is running its embedded default configuration (transport %s).\n", name)
		fmt.Fprintf(o.stdout, "  listener %q on %s forwards to the demo upstream on %s\n",
			listeners[0].Name(), listeners[0].Addr(), demo.addr)
		fmt.Fprintf(o.stdout, "Try it:\n  curl http://%s/\nStop with Ctrl-C.\n", listeners[0].Addr())
	}

	<-ctx.Done()
	drain := rt.DrainTimeout
	if drain <= 0 {
		drain = defaultDrainTimeout
	}
	log.Info("draining", "timeout", drain.String())
	for _, l := range listeners {
		if err := l.StopAccepting(); err != nil {
			log.Warn("stop accepting", "listener", l.Name(), "err", err)
		}
	}
	deadline := time.Now().Add(drain)
	drained := true
	for _, l := range listeners {
		if !l.WaitIdle(deadline) {
			drained = false
			log.Warn("drain timeout: closing open connections", "listener", l.Name(), "open", l.ActiveConnections())
		}
	}
	if drained {
		log.Info("drained")
	}
	return nil
}

func poolWorkers(n int) int {
	if n <= 0 {
		return 1024
	}
	return n
}

// runOrInline runs fn on the pool, or inline when the pool is saturated: transport work that
// is already admitted (a connection's queued callbacks) must run, never be dropped.
func runOrInline(pool *pipeline.Pool, fn func()) {
	if !pool.Go(fn) {
		go fn()
	}
}

var errUnknownTransport = errors.New("unknown transport")
