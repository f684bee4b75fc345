package discovery

import (
	"fmt"
	"log/slog"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/stream"
	"github.com/strait-proxy/strait/reactor"
)

// Strait's own bootstrap extension: bootstrap_extensions[] entry named RuntimeExtensionName
// whose typed_config is a TypedStruct with type_url RuntimeTypeURL.
const (
	RuntimeExtensionName = "strait.runtime"
	RuntimeTypeURL       = "type.googleapis.com/strait.config.v1.Runtime"
)

// Transport names a reactor backend.
type Transport string

// The transports cmd/strait knows. The empty value means "not set": the flag or the
// binary's default decides.
const (
	TransportGnet    Transport = "gnet"
	TransportNetpoll Transport = "netpoll"
	TransportStdnet  Transport = "stdnet"
)

// RuntimeConfig is the strait.runtime extension: process-wide settings Envoy's API has no
// place for. Every zero field means "the backend's default" (see reactor.Options).
type RuntimeConfig struct {
	// Transport is the reactor backend; the --transport flag wins over it.
	Transport Transport
	// Loops is the number of event loops or pollers.
	Loops int
	// GoMaxProcs sets the Go scheduler's P count (GOMAXPROCS) when Strait runs as its own
	// process; 0 lets the server choose (see server.Run). The GOMAXPROCS environment
	// variable wins over both.
	GoMaxProcs int
	// ReadBufferSize, HighWatermark, LowWatermark and MaxReadBuffer are reactor.Options'
	// buffer settings, in bytes.
	ReadBufferSize int
	HighWatermark  int
	LowWatermark   int
	MaxReadBuffer  int
	// MaxConnections caps open connections across listeners and dials (0: no cap).
	MaxConnections int
	// WorkerPoolSize bounds the request pool (0: the binary's default).
	WorkerPoolSize int
	// DrainTimeout bounds the graceful drain on shutdown (0: the binary's default).
	DrainTimeout time.Duration
	// LogLevel is the minimum log level (default info).
	LogLevel slog.Level
	// RequestDispatch says where every stream manager (HTTP connection manager, RPC proxy)
	// runs a request's decode filters and routing: stream.DispatchAuto (the default: on the
	// connection's executor unless a configured filter may block, then on the bounded request
	// pool), stream.DispatchPool (always the pool) or stream.DispatchInline (always the
	// executor). Copied into every stream.Config.
	RequestDispatch stream.Dispatch
}

// runtimeJSON is the TypedStruct's value as written in the bootstrap.
type runtimeJSON struct {
	Transport      string `json:"transport"`
	Loops          int    `json:"loops"`
	GoMaxProcs     int    `json:"gomaxprocs"`
	ReadBufferSize int    `json:"read_buffer_size"`
	HighWatermark  int    `json:"high_watermark"`
	LowWatermark   int    `json:"low_watermark"`
	MaxReadBuffer  int    `json:"max_read_buffer"`
	MaxConnections int    `json:"max_connections"`
	WorkerPoolSize int    `json:"worker_pool_size"`
	DrainTimeout   string `json:"drain_timeout"`
	LogLevel       string `json:"log_level"`
	// RequestDispatch is "auto" (default), "pool" or "inline".
	RequestDispatch string `json:"request_dispatch"`
}

// Limits for RuntimeConfig values.
const (
	MaxLoops      = 1024
	MaxBufferSize = 1 << 30
)

// Validate reports every problem, each naming its field.
func (c *RuntimeConfig) Validate() error {
	var l errs
	switch c.Transport {
	case "", TransportGnet, TransportNetpoll, TransportStdnet:
	default:
		l.add("transport", fmt.Errorf("%w: %q (want gnet, netpoll or stdnet)", ErrInvalid, string(c.Transport)))
	}
	ints := []struct {
		name string
		v    int
		max  int
	}{
		{"loops", c.Loops, MaxLoops},
		{"gomaxprocs", c.GoMaxProcs, MaxLoops + 1},
		{"read_buffer_size", c.ReadBufferSize, MaxBufferSize},
		{"high_watermark", c.HighWatermark, MaxBufferSize},
		{"low_watermark", c.LowWatermark, MaxBufferSize},
		{"max_read_buffer", c.MaxReadBuffer, MaxBufferSize},
		{"max_connections", c.MaxConnections, 1 << 30},
		{"worker_pool_size", c.WorkerPoolSize, 1 << 24},
	}
	for _, f := range ints {
		if f.v < 0 || f.v > f.max {
			l.add(f.name, fmt.Errorf("%w: %d (want 0 to %d)", ErrInvalid, f.v, f.max))
		}
	}
	high, low := c.HighWatermark, c.LowWatermark
	if high == 0 {
		high = reactor.DefaultHighWatermark
	}
	if low == 0 {
		low = reactor.DefaultLowWatermark
	}
	if low >= high {
		l.add("low_watermark", fmt.Errorf("%w: %d must be below high_watermark %d", ErrInvalid, low, high))
	}
	if c.DrainTimeout < 0 {
		l.add("drain_timeout", fmt.Errorf("%w: negative", ErrInvalid))
	}
	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		l.add("log_level", fmt.Errorf("%w: %v", ErrInvalid, c.LogLevel))
	}
	switch c.RequestDispatch {
	case stream.DispatchAuto, stream.DispatchPool, stream.DispatchInline:
	default:
		l.add("request_dispatch", fmt.Errorf("%w: %d", ErrInvalid, c.RequestDispatch))
	}
	return l.err()
}

// ReactorOptions maps the runtime settings onto the transport's options.
func (c *RuntimeConfig) ReactorOptions() reactor.Options {
	return reactor.Options{
		Loops:          c.Loops,
		ReadBufferSize: c.ReadBufferSize,
		HighWatermark:  c.HighWatermark,
		LowWatermark:   c.LowWatermark,
		MaxReadBuffer:  c.MaxReadBuffer,
		MaxConns:       c.MaxConnections,
	}
}

// TranslateRuntime decodes the strait.runtime extension strictly.
func TranslateRuntime(ext *corev3.TypedExtensionConfig) (RuntimeConfig, error) {
	var l errs
	checkSupported(ext.ProtoReflect(), "", &l)
	if ext.GetName() != RuntimeExtensionName {
		l.add("name", fmt.Errorf("bootstrap extension %q is %w (only %q exists)", ext.GetName(), ErrUnsupported, RuntimeExtensionName))
	}
	if len(l.list) > 0 {
		return RuntimeConfig{}, l.err()
	}
	a := ext.GetTypedConfig()
	if a.GetTypeUrl() != TypedStructURL {
		return RuntimeConfig{}, &FieldError{Field: "typed_config", Err: fmt.Errorf("%w: %q (want a %s with type_url %s)", ErrInvalid, a.GetTypeUrl(), TypedStructURL, RuntimeTypeURL)}
	}
	var ts xdstypev3.TypedStruct
	if err := a.UnmarshalTo(&ts); err != nil {
		return RuntimeConfig{}, &FieldError{Field: "typed_config", Err: fmt.Errorf("%w: %v", ErrInvalid, err)}
	}
	if ts.GetTypeUrl() != RuntimeTypeURL {
		return RuntimeConfig{}, &FieldError{Field: "typed_config.type_url", Err: fmt.Errorf("%w: %q (want %s)", ErrInvalid, ts.GetTypeUrl(), RuntimeTypeURL)}
	}
	var raw runtimeJSON
	if err := decodeStruct(ts.GetValue(), &raw); err != nil {
		l.add("typed_config", err)
		if !onlyUnknownFields(err) {
			return RuntimeConfig{}, l.err()
		}
	}
	cfg := RuntimeConfig{
		Transport:      Transport(raw.Transport),
		Loops:          raw.Loops,
		GoMaxProcs:     raw.GoMaxProcs,
		ReadBufferSize: raw.ReadBufferSize,
		HighWatermark:  raw.HighWatermark,
		LowWatermark:   raw.LowWatermark,
		MaxReadBuffer:  raw.MaxReadBuffer,
		MaxConnections: raw.MaxConnections,
		WorkerPoolSize: raw.WorkerPoolSize,
	}
	if raw.DrainTimeout != "" {
		d, err := time.ParseDuration(raw.DrainTimeout)
		if err != nil {
			l.add("typed_config.value.drain_timeout", fmt.Errorf("%w: %q is not a duration like \"5s\"", ErrInvalid, raw.DrainTimeout))
		}
		cfg.DrainTimeout = d
	}
	if raw.LogLevel != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(raw.LogLevel)); err != nil || !validLevelName(raw.LogLevel) {
			l.add("typed_config.value.log_level", fmt.Errorf("%w: %q (want debug, info, warn or error)", ErrInvalid, raw.LogLevel))
		}
	}
	switch raw.RequestDispatch {
	case "", "auto":
	case "pool":
		cfg.RequestDispatch = stream.DispatchPool
	case "inline":
		cfg.RequestDispatch = stream.DispatchInline
	default:
		l.add("typed_config.value.request_dispatch", fmt.Errorf("%w: %q (want auto, pool or inline)", ErrInvalid, raw.RequestDispatch))
	}
	if err := cfg.Validate(); err != nil {
		l.add("typed_config.value", err)
	}
	if len(l.list) > 0 {
		return RuntimeConfig{}, l.err()
	}
	return cfg, nil
}

func validLevelName(s string) bool {
	switch s {
	case "debug", "info", "warn", "error", "DEBUG", "INFO", "WARN", "ERROR":
		return true
	}
	return false
}

// ApplyRuntime copies the runtime settings that belong in filter configurations into a
// translated listener: RequestDispatch into every *stream.Config of its filter chain. Parse
// does it for the bootstrap's listeners; the xDS client calls it on listeners it translates,
// before they are shared.
func ApplyRuntime(l pipeline.ListenerConfig, rt RuntimeConfig) {
	for _, f := range l.FilterChain {
		if sc, ok := f.Config.(*stream.Config); ok {
			sc.Dispatch = rt.RequestDispatch
		}
	}
}
