package discovery

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol/http2"
)

// HTTPProtocolOptionsKey is the typed_extension_protocol_options key (and message type) of a
// cluster's upstream HTTP settings.
const HTTPProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// translateHTTPProtocolOptions maps a cluster's HttpProtocolOptions onto its connection
// pool settings. Supported: explicit_http_config.http_protocol_options (Protocol "http1"),
// explicit_http_config.http2_protocol_options (Protocol "http2"),
// use_downstream_protocol_config (Protocol pipeline.ProtocolDownstream), both with
// http2_protocol_options translated by translateHTTP2Options into CodecConfigs "http2" (and
// max_concurrent_streams into MaxConcurrentStreams), common_http_protocol_options.
// idle_timeout and .max_requests_per_connection. A cluster without HttpProtocolOptions
// chooses no protocol: the stream manager's default applies (HTTP/1.1 from an HTTP
// connection manager, as in Envoy; an RPC proxy's own protocol). Errors are placed under
// path.
func translateHTTPProtocolOptions(a *anypb.Any, path string, e *errs) pipeline.ConnPoolOptions {
	var out pipeline.ConnPoolOptions
	if a.GetTypeUrl() != "type.googleapis.com/"+HTTPProtocolOptionsKey {
		e.add(path, fmt.Errorf("%w: %q under the key %s (want type.googleapis.com/%s)", ErrInvalid, a.GetTypeUrl(), HTTPProtocolOptionsKey, HTTPProtocolOptionsKey))
		return out
	}
	var o httpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&o); err != nil {
		e.add(path, fmt.Errorf("%w: %v", ErrInvalid, err))
		return out
	}
	n := len(e.list)
	checkSupported(o.ProtoReflect(), path, e)
	if c := o.GetCommonHttpProtocolOptions(); c != nil {
		if t := c.GetIdleTimeout(); t != nil {
			out.IdleTimeout = duration(t.AsDuration(), joinPath(path, "common_http_protocol_options.idle_timeout"), e)
			if t.AsDuration() == 0 {
				e.add(joinPath(path, "common_http_protocol_options.idle_timeout"), fmt.Errorf("0s (never closing idle upstream connections) is %w; set a long timeout instead", ErrUnsupported))
			}
		}
		if m := c.GetMaxRequestsPerConnection(); m != nil {
			out.MaxRequestsPerConnection = int(m.GetValue())
		}
	}
	h2options := func(h2 *corev3.Http2ProtocolOptions, field string) {
		if h2 == nil {
			return
		}
		cfg := translateHTTP2Options(h2, joinPath(path, field), e)
		if m := h2.GetMaxConcurrentStreams(); m != nil {
			out.MaxConcurrentStreams = int(m.GetValue())
		}
		if cfg != (http2.Config{}) {
			out.CodecConfigs = map[string]any{CodecHTTP2: cfg}
		}
	}
	switch p := o.GetUpstreamProtocolOptions().(type) {
	case *httpv3.HttpProtocolOptions_ExplicitHttpConfig_:
		switch c := p.ExplicitHttpConfig.GetProtocolConfig().(type) {
		case *httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
			out.Protocol = CodecHTTP1
		case *httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
			out.Protocol = CodecHTTP2
			h2options(c.Http2ProtocolOptions, "explicit_http_config.http2_protocol_options")
		case nil:
			e.add(joinPath(path, "explicit_http_config"), missing("one of http_protocol_options and http2_protocol_options is required"))
		default:
			// http3_protocol_options: checkSupported.
		}
	case *httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig:
		out.Protocol = pipeline.ProtocolDownstream
		h2options(p.UseDownstreamProtocolConfig.GetHttp2ProtocolOptions(), "use_downstream_protocol_config.http2_protocol_options")
	case nil:
		e.add(path, missing("one of explicit_http_config and use_downstream_protocol_config is required"))
	default:
		// auto_config: checkSupported.
	}
	if len(e.list) == n {
		if err := o.ValidateAll(); err != nil {
			e.add(path, fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	return out
}
