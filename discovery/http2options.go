package discovery

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-proxy/strait/protocol/http2"
)

// translateHTTP2Options maps Envoy's Http2ProtocolOptions (a connection manager's
// http2_protocol_options, or a cluster's explicit_http_config / use_downstream_protocol_config
// http2_protocol_options) onto the HTTP/2 codec's configuration. Supported:
//
//	hpack_table_size                                      HeaderTableSize
//	max_concurrent_streams                                MaxConcurrentStreams
//	initial_stream_window_size                            InitialStreamWindow
//	initial_connection_window_size                        InitialConnWindow
//	max_outbound_frames                                   MaxOutboundFramesQueued
//	max_outbound_control_frames                           MaxControlFramesQueued
//	max_consecutive_inbound_frames_with_empty_payload     MaxConsecutiveEmptyFrames
//	max_inbound_priority_frames_per_stream                MaxPriorityPerStream
//	max_inbound_window_update_frames_per_data_frame_sent  MaxWindowUpdatesPerDataFrame
//
// Every other populated field is rejected by name (checkSupported, with the allowlist in
// strict.go). A 0 that Envoy gives a meaning the codec does not have (no HPACK dynamic table,
// no empty frame or PRIORITY frame tolerated at all) is rejected rather than read as "the
// default". Errors are placed under path.
func translateHTTP2Options(o *corev3.Http2ProtocolOptions, path string, e *errs) http2.Config {
	var c http2.Config
	if o == nil {
		return c
	}
	u32 := func(field string, v *wrapperspb.UInt32Value, dst *uint32) {
		if v == nil {
			return
		}
		if v.GetValue() == 0 {
			e.add(joinPath(path, field), fmt.Errorf("0 is %w (the HTTP/2 codec has no setting for it); leave it out for the default", ErrUnsupported))
			return
		}
		*dst = v.GetValue()
	}
	i := func(field string, v *wrapperspb.UInt32Value, dst *int) {
		var x uint32
		u32(field, v, &x)
		*dst = int(x)
	}
	u32("hpack_table_size", o.GetHpackTableSize(), &c.HeaderTableSize)
	u32("max_concurrent_streams", o.GetMaxConcurrentStreams(), &c.MaxConcurrentStreams)
	u32("initial_stream_window_size", o.GetInitialStreamWindowSize(), &c.InitialStreamWindow)
	u32("initial_connection_window_size", o.GetInitialConnectionWindowSize(), &c.InitialConnWindow)
	i("max_outbound_frames", o.GetMaxOutboundFrames(), &c.MaxOutboundFramesQueued)
	i("max_outbound_control_frames", o.GetMaxOutboundControlFrames(), &c.MaxControlFramesQueued)
	i("max_consecutive_inbound_frames_with_empty_payload", o.GetMaxConsecutiveInboundFramesWithEmptyPayload(), &c.MaxConsecutiveEmptyFrames)
	i("max_inbound_priority_frames_per_stream", o.GetMaxInboundPriorityFramesPerStream(), &c.MaxPriorityPerStream)
	i("max_inbound_window_update_frames_per_data_frame_sent", o.GetMaxInboundWindowUpdateFramesPerDataFrameSent(), &c.MaxWindowUpdatesPerDataFrame)
	if err := c.Validate(); err != nil {
		e.add(path, fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	return c
}
