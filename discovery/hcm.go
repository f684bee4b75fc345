package discovery

import (
	"fmt"
	"slices"
	"strconv"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/stream"
	"github.com/strait-proxy/strait/protocol/http2"
)

// Envoy's HTTP connection manager and its router filter.
const (
	HTTPConnectionManagerTypeURL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	// RouterHTTPFilterTypeURL is the router's typed_config type. The router is part of the
	// connection manager (routing follows the last stream filter), so it is not registered:
	// it must be the last entry of http_filters, and its typed_config may be left out.
	RouterHTTPFilterTypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	// RouterHTTPFilterName is the router's conventional filter name; an http_filters entry
	// with this name and no typed_config is the router.
	RouterHTTPFilterName = "envoy.filters.http.router"
)

// The codec names codec_type maps to (protocol.Registry names).
const (
	CodecHTTP1 = "http1"
	CodecHTTP2 = "http2"
)

// HTTPConnectionManagerFilter is the built-in HTTP connection manager registration, for
// cmd/strait's ordered list. It decodes into a *stream.Config; its HTTP filters are
// decoded through the registry's HTTP filters, and its codecs must be among the registry's
// codecs (Registry.SetCodecs).
func HTTPConnectionManagerFilter() NetworkFilter {
	return NetworkFilter{TypeURL: HTTPConnectionManagerTypeURL, DecodeWithRegistry: DecodeHTTPConnectionManager}
}

// DecodeHTTPConnectionManager translates an
// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager into a
// *stream.Config (see TranslateHTTPConnectionManager).
func DecodeHTTPConnectionManager(reg *Registry, a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
	var m hcmv3.HttpConnectionManager
	if err := a.UnmarshalTo(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return TranslateHTTPConnectionManager(&m, reg)
}

// TranslateHTTPConnectionManager is DecodeHTTPConnectionManager on a decoded message.
// Supported: stat_prefix; codec_type AUTO (the registry's codecs among http1 and http2, in
// that order), HTTP1, HTTP2; route_config (inline, see TranslateRouteConfiguration);
// http_filters (registered HTTP filters, then the router last);
// common_http_protocol_options.idle_timeout (absent: stream.DefaultIdleTimeout; 0s
// disables) and .max_requests_per_connection; stream_idle_timeout; http2_protocol_options
// (translateHTTP2Options: the listener's own HTTP/2 codec configuration, CodecConfigs
// "http2"; max_concurrent_streams also bounds the manager's streams per connection). Any
// other populated field is an error naming it; errors are relative to the connection
// manager's typed_config. Clusters that choose no upstream protocol are spoken to over
// HTTP/1.1 (DefaultUpstreamCodec "http1", Envoy's default) when the program has that codec.
func TranslateHTTPConnectionManager(m *hcmv3.HttpConnectionManager, reg *Registry) (*stream.Config, error) {
	var e errs
	if reg == nil {
		return nil, fmt.Errorf("%w: no filter registry", ErrRegistry)
	}
	checkSupported(m.ProtoReflect(), "", &e)
	cfg := &stream.Config{StatPrefix: m.GetStatPrefix(), IdleTimeout: stream.DefaultIdleTimeout}
	if cfg.StatPrefix == "" {
		e.add("stat_prefix", fmt.Errorf("%w: stat_prefix is required", ErrInvalid))
	}
	cfg.Codecs = hcmCodecs(m, reg, &e)
	if reg.hasCodec(CodecHTTP1) {
		cfg.DefaultUpstreamCodec = CodecHTTP1
	}

	switch rs := m.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_RouteConfig:
		var re errs
		cfg.Route = translateRouteConfig(rs.RouteConfig, &re)
		e.add("route_config", re.err())
	case nil:
		e.add("", missing("route_config is required (rds and scoped_routes are not supported yet)"))
	default:
		// rds, scoped_routes: checkSupported.
	}

	cfg.Filters = httpFilters(m.GetHttpFilters(), reg, &e)

	if o := m.GetCommonHttpProtocolOptions(); o != nil {
		if t := o.GetIdleTimeout(); t != nil {
			cfg.IdleTimeout = duration(t.AsDuration(), "common_http_protocol_options.idle_timeout", &e)
		}
		if n := o.GetMaxRequestsPerConnection(); n != nil {
			cfg.MaxRequestsPerConnection = int(n.GetValue())
		}
	}
	if t := m.GetStreamIdleTimeout(); t != nil {
		cfg.StreamIdleTimeout = duration(t.AsDuration(), "stream_idle_timeout", &e)
		if cfg.StreamIdleTimeout == 0 && t.AsDuration() == 0 {
			e.add("stream_idle_timeout", fmt.Errorf("0s (disabling it) is %w; set a long timeout instead", ErrUnsupported))
		}
	}
	if h2 := m.GetHttp2ProtocolOptions(); h2 != nil {
		if !slices.Contains(cfg.Codecs, CodecHTTP2) && len(cfg.Codecs) > 0 {
			e.add("http2_protocol_options", fmt.Errorf("%w: set, but the connection manager does not speak HTTP/2 (codecs: %v)", ErrInvalid, cfg.Codecs))
		}
		h2cfg := translateHTTP2Options(h2, "http2_protocol_options", &e)
		if n := h2.GetMaxConcurrentStreams(); n != nil {
			cfg.MaxStreams = int(n.GetValue())
		}
		if slices.Contains(cfg.Codecs, CodecHTTP2) && h2cfg != (http2.Config{}) {
			cfg.CodecConfigs = map[string]any{CodecHTTP2: h2cfg}
		}
	}

	if len(e.list) == 0 {
		// Envoy's own constraints (protoc-gen-validate rules), then the stream manager's.
		if err := m.ValidateAll(); err != nil {
			e.add("", fmt.Errorf("%w: %v", ErrInvalid, err))
		} else if err := cfg.Validate(); err != nil {
			e.add("", err)
		}
	}
	if len(e.list) > 0 {
		return nil, e.err()
	}
	return cfg, nil
}

func hcmCodecs(m *hcmv3.HttpConnectionManager, reg *Registry, e *errs) []string {
	need := func(name string) []string {
		if !reg.hasCodec(name) {
			e.add("codec_type", fmt.Errorf("%w: %v needs the %s codec, which this program does not have (codecs: %s)", ErrInvalid, m.GetCodecType(), name, reg.codecList()))
			return nil
		}
		return []string{name}
	}
	switch ct := m.GetCodecType(); ct {
	case hcmv3.HttpConnectionManager_AUTO:
		var out []string
		for _, c := range []string{CodecHTTP1, CodecHTTP2} {
			if reg.hasCodec(c) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			e.add("codec_type", fmt.Errorf("%w: AUTO needs an http1 or http2 codec, and this program has none (codecs: %s)", ErrInvalid, reg.codecList()))
		}
		return out
	case hcmv3.HttpConnectionManager_HTTP1:
		return need(CodecHTTP1)
	case hcmv3.HttpConnectionManager_HTTP2:
		return need(CodecHTTP2)
	default:
		e.add("codec_type", fmt.Errorf("%v is %w (AUTO, HTTP1, HTTP2)", ct, ErrUnsupported))
		return nil
	}
}

// isRouter reports whether an http_filters entry is the router: its typed_config has the
// router's type, or it has none and the router's name.
func isRouter(f *hcmv3.HttpFilter) bool {
	if tc := f.GetTypedConfig(); tc != nil {
		return tc.GetTypeUrl() == RouterHTTPFilterTypeURL
	}
	return f.GetConfigType() == nil && f.GetName() == RouterHTTPFilterName
}

// httpFilters decodes the stream filters before the router and checks the router is last.
func httpFilters(filters []*hcmv3.HttpFilter, reg *Registry, e *errs) []stream.NamedFilter {
	if len(filters) == 0 {
		e.add("http_filters", fmt.Errorf("%w: at least the router is required (name: %s, typed_config: {\"@type\": %s})", ErrInvalid, RouterHTTPFilterName, RouterHTTPFilterTypeURL))
		return nil
	}
	last := len(filters) - 1
	if !slices.ContainsFunc(filters, isRouter) {
		e.add("http_filters["+strconv.Itoa(last)+"]", fmt.Errorf("%w: the last HTTP filter must be the router (%s), found %q", ErrInvalid, RouterHTTPFilterTypeURL, filters[last].GetName()))
	}
	var out []stream.NamedFilter
	for i, f := range filters {
		path := "http_filters[" + strconv.Itoa(i) + "]"
		if f.GetName() == "" {
			e.add(joinPath(path, "name"), fmt.Errorf("%w: a filter name is required", ErrInvalid))
		}
		if isRouter(f) {
			if i != last {
				e.add(path, fmt.Errorf("%w: the router (%s) must be the last HTTP filter, found at %d of %d", ErrInvalid, f.GetName(), i, len(filters)))
			}
			if tc := f.GetTypedConfig(); tc != nil {
				var r routerv3.Router
				if err := tc.UnmarshalTo(&r); err != nil {
					e.add(joinPath(path, "typed_config"), fmt.Errorf("%w: %v", ErrInvalid, err))
				} else {
					checkSupported(r.ProtoReflect(), joinPath(path, "typed_config"), e)
				}
			}
			continue
		}
		tc := f.GetTypedConfig()
		if tc == nil {
			if f.GetConfigType() == nil {
				e.add(path, missing("typed_config is required"))
			}
			continue
		}
		fc, err := reg.decodeHTTPFilter(tc)
		if err != nil {
			e.add(joinPath(path, "typed_config"), err)
			continue
		}
		out = append(out, stream.NamedFilter{Name: f.GetName(), Config: fc})
	}
	return out
}
