package discovery

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/pipeline/stream"
)

// RPCProxyTypeURL is the TypedStruct type_url of Strait's RPC proxy: the stream manager
// for RPC protocols Envoy has no filter for (Bolt).
const RPCProxyTypeURL = "type.googleapis.com/strait.filters.network.rpc_proxy.v1.RpcProxy"

// RPCVirtualHost is the name (and the only domain) of the RPC proxy's one virtual host.
const RPCVirtualHost = "*"

// RPCProxyFilter is the built-in RPC proxy registration, for cmd/strait's ordered list. It
// is configured with an xds.type.v3.TypedStruct whose type_url is RPCProxyTypeURL and
// decodes into a *stream.Config.
func RPCProxyFilter() NetworkFilter {
	return NetworkFilter{TypeURL: RPCProxyTypeURL, DecodeWithRegistry: DecodeRPCProxy}
}

// rpcProxyJSON is the TypedStruct's value as written in the bootstrap. Pointers tell an
// absent field from a zero one.
type rpcProxyJSON struct {
	StatPrefix  string         `json:"stat_prefix"`
	Protocol    string         `json:"protocol"`
	IdleTimeout *jsonDuration  `json:"idle_timeout"`
	MaxStreams  int            `json:"max_streams"`
	Routes      []rpcRouteJSON `json:"routes"`
}

type rpcRouteJSON struct {
	Name  string         `json:"name"`
	Match *rpcMatchJSON  `json:"match"`
	Route *rpcActionJSON `json:"route"`
}

type rpcMatchJSON struct {
	Service       *string              `json:"service"`
	ServicePrefix *string              `json:"service_prefix"`
	ServiceRegex  *string              `json:"service_regex"`
	Headers       []rpcHeaderMatchJSON `json:"headers"`
}

type rpcHeaderMatchJSON struct {
	Name    string  `json:"name"`
	Exact   *string `json:"exact"`
	Prefix  *string `json:"prefix"`
	Regex   *string `json:"regex"`
	Present *bool   `json:"present"`
}

type rpcActionJSON struct {
	Cluster          string            `json:"cluster"`
	WeightedClusters []rpcWeightedJSON `json:"weighted_clusters"`
	Timeout          *jsonDuration     `json:"timeout"`
	RetryPolicy      *rpcRetryJSON     `json:"retry_policy"`
}

type rpcWeightedJSON struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

type rpcRetryJSON struct {
	NumRetries *uint32  `json:"num_retries"`
	RetryOn    []string `json:"retry_on"`
}

// jsonDuration is a duration written as a string: Envoy's "1.5s" or Go's "300ms", "1m30s".
type jsonDuration struct {
	d time.Duration
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string like \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"5s\" or \"250ms\"", s)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	d.d = v
	return nil
}

// DecodeRPCProxy translates the RPC proxy's TypedStruct into a *stream.Config: the codec
// named by protocol (which reg must have, see Registry.SetCodecs) and one virtual host "*"
// whose routes match the codec's :path (Bolt: the service class name). The value is
// decoded strictly; every error names its field under "value".
//
//	stat_prefix   required
//	protocol      required: a codec name ("bolt")
//	idle_timeout  absent: stream.DefaultIdleTimeout; "0s" disables
//	max_streams   concurrent requests per downstream connection (0: stream.DefaultMaxStreams)
//	routes[]      name; match {service | service_prefix | service_regex, headers[] {name,
//	              exact | prefix | regex | present}} (absent: every request); route
//	              {cluster | weighted_clusters[] {name, weight}, timeout (absent:
//	              router.DefaultTimeout; "0s" disables), retry_policy {num_retries
//	              (absent: 1), retry_on [connect-failure, reset]}}
func DecodeRPCProxy(reg *Registry, a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: no filter registry", ErrRegistry)
	}
	if a.GetTypeUrl() != TypedStructURL {
		return nil, fmt.Errorf("%w: the RPC proxy is configured with a %s, got %q", ErrInvalid, TypedStructURL, a.GetTypeUrl())
	}
	var ts xdstypev3.TypedStruct
	if err := a.UnmarshalTo(&ts); err != nil {
		return nil, fmt.Errorf("%w: TypedStruct: %v", ErrInvalid, err)
	}
	var raw rpcProxyJSON
	var e errs
	decodeErr := decodeStruct(ts.GetValue(), &raw)
	e.add("", decodeErr)
	// The values that did not decode were left out (and reported): translate the rest too,
	// so that every problem is reported at once, but without "required" errors that the
	// left-out values may have caused.
	var te errs
	cfg := translateRPCProxy(&raw, reg, &te)
	if decodeErr != nil {
		e.list = append(e.list, withoutMissing(te.err())...)
	} else {
		e.list = append(e.list, te.list...)
	}
	if len(e.list) == 0 {
		if err := cfg.Validate(); err != nil {
			e.add("value", err)
		}
	}
	if len(e.list) > 0 {
		return nil, e.err()
	}
	return cfg, nil
}

func translateRPCProxy(raw *rpcProxyJSON, reg *Registry, e *errs) *stream.Config {
	cfg := &stream.Config{
		StatPrefix:  raw.StatPrefix,
		IdleTimeout: stream.DefaultIdleTimeout,
		MaxStreams:  raw.MaxStreams,
	}
	if raw.StatPrefix == "" {
		e.add("value.stat_prefix", missing("stat_prefix is required"))
	}
	switch {
	case raw.Protocol == "":
		e.add("value.protocol", missing("protocol is required (a codec name: %s)", reg.codecList()))
	case !reg.hasCodec(raw.Protocol):
		e.add("value.protocol", fmt.Errorf("%w: %q is not a codec of this program (codecs: %s)", ErrInvalid, raw.Protocol, reg.codecList()))
	default:
		cfg.Codecs = []string{raw.Protocol}
	}
	if raw.IdleTimeout != nil {
		cfg.IdleTimeout = raw.IdleTimeout.d
	}
	if raw.MaxStreams < 0 {
		e.add("value.max_streams", fmt.Errorf("%w: %d is negative", ErrInvalid, raw.MaxStreams))
	}
	vh := router.VirtualHost{Name: RPCVirtualHost, Domains: []string{RPCVirtualHost}}
	if len(raw.Routes) == 0 {
		e.add("value.routes", missing("at least one route is required"))
	}
	for i, r := range raw.Routes {
		vh.Routes = append(vh.Routes, translateRPCRoute(&r, "value.routes["+strconv.Itoa(i)+"]", e))
	}
	cfg.Route = &router.Config{Name: raw.StatPrefix, VirtualHosts: []router.VirtualHost{vh}}
	return cfg
}

func translateRPCRoute(r *rpcRouteJSON, path string, e *errs) router.Route {
	out := router.Route{Name: r.Name}
	if m := r.Match; m != nil {
		mp := path + ".match"
		set := 0
		if m.Service != nil {
			set++
			out.Match.Path = *m.Service
			if *m.Service == "" {
				e.add(mp+".service", fmt.Errorf("%w: must not be empty", ErrInvalid))
			}
		}
		if m.ServicePrefix != nil {
			set++
			out.Match.Prefix = *m.ServicePrefix
		}
		if m.ServiceRegex != nil {
			set++
			out.Match.Regex = rpcRegex(*m.ServiceRegex, mp+".service_regex", e)
		}
		if set > 1 {
			e.add(mp, fmt.Errorf("%w: at most one of service, service_prefix and service_regex", ErrInvalid))
		}
		for j, h := range m.Headers {
			hp := mp + ".headers[" + strconv.Itoa(j) + "]"
			hm := router.HeaderMatcher{Name: h.Name}
			if h.Name == "" {
				e.add(hp+".name", fmt.Errorf("%w: a header name is required", ErrInvalid))
			}
			n := 0
			if h.Exact != nil {
				n++
				hm.Kind, hm.Value = router.HeaderExact, *h.Exact
			}
			if h.Prefix != nil {
				n++
				hm.Kind, hm.Value = router.HeaderPrefix, *h.Prefix
			}
			if h.Regex != nil {
				n++
				hm.Kind, hm.Value = router.HeaderRegex, rpcRegex(*h.Regex, hp+".regex", e)
			}
			if h.Present != nil {
				n++
				hm.Kind, hm.Absent = router.HeaderPresent, !*h.Present
			}
			if n != 1 {
				e.add(hp, fmt.Errorf("%w: exactly one of exact, prefix, regex and present is required", ErrInvalid))
			}
			out.Match.Headers = append(out.Match.Headers, hm)
		}
	}
	ap := path + ".route"
	a := r.Route
	if a == nil {
		e.add(ap, missing("route is required"))
		return out
	}
	act := &router.Action{Cluster: a.Cluster, Timeout: router.DefaultTimeout}
	if (a.Cluster == "") == (len(a.WeightedClusters) == 0) {
		e.add(ap, missing("exactly one of cluster and weighted_clusters is required"))
	}
	var total uint64
	for k, w := range a.WeightedClusters {
		wp := ap + ".weighted_clusters[" + strconv.Itoa(k) + "]"
		if w.Name == "" {
			e.add(wp+".name", fmt.Errorf("%w: a cluster name is required", ErrInvalid))
		}
		if w.Weight == 0 {
			e.add(wp+".weight", fmt.Errorf("%w: must be at least 1", ErrInvalid))
		}
		total += uint64(w.Weight)
		act.WeightedClusters = append(act.WeightedClusters, router.WeightedCluster{Name: w.Name, Weight: w.Weight})
	}
	if total > 1<<32-1 {
		e.add(ap+".weighted_clusters", fmt.Errorf("%w: the weights add up to %d, above 4294967295", ErrInvalid, total))
	}
	if a.Timeout != nil {
		act.Timeout = a.Timeout.d
	}
	if rp := a.RetryPolicy; rp != nil {
		pp := ap + ".retry_policy"
		p := &router.RetryPolicy{NumRetries: 1}
		if rp.NumRetries != nil {
			p.NumRetries = int(*rp.NumRetries)
		}
		if len(rp.RetryOn) == 0 {
			e.add(pp+".retry_on", fmt.Errorf("%w: at least one condition is required (connect-failure, reset)", ErrInvalid))
		}
		for k, tok := range rp.RetryOn {
			switch tok {
			case "connect-failure":
				p.On |= router.RetryConnectFailure
			case "reset":
				p.On |= router.RetryReset
			default:
				e.add(pp+".retry_on["+strconv.Itoa(k)+"]", fmt.Errorf("%w: %q (an RPC proxy retries on connect-failure or reset)", ErrInvalid, tok))
			}
		}
		act.Retry = p
	}
	out.Action = act
	return out
}

func rpcRegex(re, path string, e *errs) string {
	if re == "" {
		e.add(path, fmt.Errorf("%w: the regular expression must not be empty", ErrInvalid))
		return ""
	}
	if _, err := regexp.Compile(re); err != nil {
		e.add(path, fmt.Errorf("%w: %q: %v", ErrInvalid, re, err))
		return ""
	}
	return re
}
