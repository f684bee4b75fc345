package discovery

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol/http2"
)

// http2OptionsDoc is a listener (codec AUTO) with http2_protocol_options hcmH2, and clusters
// "plain" (no protocol options), "down" (use_downstream_protocol_config with HTTP/2
// options downH2) and "h2" (explicit HTTP/2 with options clusterH2).
func http2OptionsDoc(hcmH2, downH2, clusterH2 string) string {
	return `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 1 } }
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          http_filters: [ { name: envoy.filters.http.router } ]
          http2_protocol_options: ` + hcmH2 + `
          route_config: { virtual_hosts: [ { name: v, domains: ["*"], routes: [
            { match: { prefix: /p }, route: { cluster: plain } },
            { match: { prefix: /d }, route: { cluster: down } },
            { match: { prefix: / }, route: { cluster: h2 } } ] } ] }
  clusters:
  - name: plain
  - name: down
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        use_downstream_protocol_config: { http2_protocol_options: ` + downH2 + ` }
  - name: h2
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: ` + clusterH2 + ` }
`
}

// TestHTTP2ProtocolOptions: Http2ProtocolOptions become the HTTP/2 codec's configuration,
// for the connection manager's listener and for clusters; clusters that choose no protocol
// get the connection manager's default, HTTP/1.1; use_downstream_protocol_config follows the
// downstream.
func TestHTTP2ProtocolOptions(t *testing.T) {
	all := `{ hpack_table_size: 8192, max_concurrent_streams: 50, initial_stream_window_size: 1048576,
            initial_connection_window_size: 4194304, max_outbound_frames: 20000, max_outbound_control_frames: 2000,
            max_consecutive_inbound_frames_with_empty_payload: 3, max_inbound_priority_frames_per_stream: 50,
            max_inbound_window_update_frames_per_data_frame_sent: 20 }`
	s, err := Parse("x.yaml", []byte(http2OptionsDoc(all, "{ initial_stream_window_size: 262144 }", "{ max_concurrent_streams: 7 }")), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := streamConfig(t, s.Listeners[0])
	wantH2 := http2.Config{
		HeaderTableSize: 8192, MaxConcurrentStreams: 50, InitialStreamWindow: 1 << 20, InitialConnWindow: 4 << 20,
		MaxOutboundFramesQueued: 20000, MaxControlFramesQueued: 2000, MaxConsecutiveEmptyFrames: 3,
		MaxPriorityPerStream: 50, MaxWindowUpdatesPerDataFrame: 20,
	}
	if !reflect.DeepEqual(sc.CodecConfigs, map[string]any{"http2": wantH2}) || sc.MaxStreams != 50 {
		t.Errorf("listener codec configs %+v, max streams %d; want %+v, 50", sc.CodecConfigs, sc.MaxStreams, wantH2)
	}
	if sc.DefaultUpstreamCodec != "http1" || sc.UpstreamCodec != "" {
		t.Errorf("default upstream codec %q, forced %q; want http1 (Envoy's default), none", sc.DefaultUpstreamCodec, sc.UpstreamCodec)
	}
	pools := map[string]pipeline.ConnPoolOptions{}
	for _, c := range s.Clusters {
		pools[c.Name] = c.ConnPool
	}
	want := map[string]pipeline.ConnPoolOptions{
		"plain": {},
		"down":  {Protocol: pipeline.ProtocolDownstream, CodecConfigs: map[string]any{"http2": http2.Config{InitialStreamWindow: 256 << 10}}},
		"h2":    {Protocol: "http2", MaxConcurrentStreams: 7, CodecConfigs: map[string]any{"http2": http2.Config{MaxConcurrentStreams: 7}}},
	}
	if !reflect.DeepEqual(pools, want) {
		t.Errorf("pools\n got %+v\nwant %+v", pools, want)
	}

	// Empty options configure nothing.
	s, err = Parse("x.yaml", []byte(http2OptionsDoc("{}", "{}", "{}")), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if sc := streamConfig(t, s.Listeners[0]); sc.CodecConfigs != nil {
		t.Errorf("empty options: %+v", sc.CodecConfigs)
	}

	// Without an http1 codec, clusters that choose nothing follow the downstream.
	s, err = Parse("x.yaml", []byte(strings.Replace(http2OptionsDoc("{}", "{}", "{}"), "stat_prefix: s", "stat_prefix: s\n          codec_type: HTTP2", 1)), registryOf(t, "http2"))
	if err != nil {
		t.Fatal(err)
	}
	if sc := streamConfig(t, s.Listeners[0]); sc.DefaultUpstreamCodec != "" {
		t.Errorf("no http1 codec: default upstream codec %q", sc.DefaultUpstreamCodec)
	}
}

func TestHTTP2ProtocolOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		name, hcm, cluster string
		sentinel           error
		want               []string
	}{
		{"unsupported fields", "{ allow_connect: true, connection_keepalive: { interval: 1s, timeout: 1s } }", "{ max_header_field_size_kb: 10 }", ErrUnsupported, []string{
			`typed_config.http2_protocol_options: field "allow_connect" is not supported by Strait`,
			`typed_config.http2_protocol_options: field "connection_keepalive" is not supported by Strait`,
			`explicit_http_config.http2_protocol_options: field "max_header_field_size_kb" is not supported by Strait`,
		}},
		{"zero meaning something else", "{ hpack_table_size: 0, max_inbound_priority_frames_per_stream: 0 }", "{ max_consecutive_inbound_frames_with_empty_payload: 0 }", ErrUnsupported, []string{
			`typed_config.http2_protocol_options.hpack_table_size: 0 is not supported by Strait`,
			`typed_config.http2_protocol_options.max_inbound_priority_frames_per_stream: 0 is not supported by Strait`,
			`explicit_http_config.http2_protocol_options.max_consecutive_inbound_frames_with_empty_payload: 0 is not supported by Strait`,
		}},
		{"beyond the codec's bounds", "{ max_concurrent_streams: 2000000 }", "{ hpack_table_size: 4194304 }", ErrInvalid, []string{
			`typed_config.http2_protocol_options: invalid value: http2: invalid configuration: MaxConcurrentStreams 2000000 above 1048576`,
			`explicit_http_config.http2_protocol_options: invalid value: http2: invalid configuration: HeaderTableSize 4194304 above 1 MiB`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(http2OptionsDoc(tc.hcm, "{}", tc.cluster)), testRegistry(t))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, tc.sentinel) || len(flatten(err)) != len(tc.want) {
				t.Errorf("%d errors (want %d %v): %v", len(flatten(err)), len(tc.want), tc.sentinel, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\nmissing\n  %s", err, w)
				}
			}
		})
	}
}

func registryOf(t *testing.T, codecs ...string) *Registry {
	t.Helper()
	reg := NewRegistry()
	reg.SetCodecs(codecs)
	if err := reg.Register(HTTPConnectionManagerFilter()); err != nil {
		t.Fatal(err)
	}
	return reg
}
