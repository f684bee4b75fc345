package discovery

import (
	"fmt"
	"slices"
	"strings"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/stream"
)

// TypedStructURL is the type URL of xds.type.v3.TypedStruct. A filter configured with it is
// looked up by the TypedStruct's own type_url.
const TypedStructURL = "type.googleapis.com/xds.type.v3.TypedStruct"

// NetworkFilterDecoder turns a filter's typed_config into its typed, validated configuration.
// Errors should name the offending field; *FieldError values with a Field relative to the
// typed_config get the full path prefixed.
type NetworkFilterDecoder func(a *anypb.Any) (pipeline.NetworkFilterConfig, error)

// RegistryDecoder is a NetworkFilterDecoder that also needs the registry it is registered
// in: the stream managers (HTTP connection manager, RPC proxy) decode their HTTP filters
// through it and check their codecs against it.
type RegistryDecoder func(reg *Registry, a *anypb.Any) (pipeline.NetworkFilterConfig, error)

// NetworkFilter is one registration: a type URL and its decoder. cmd/strait and user
// programs register an ordered list of them. Exactly one of Decode and DecodeWithRegistry
// is set.
type NetworkFilter struct {
	TypeURL            string
	Decode             NetworkFilterDecoder
	DecodeWithRegistry RegistryDecoder
}

// HTTPFilterDecoder turns an HTTP filter's typed_config (an entry of the connection
// manager's http_filters) into its typed, validated stream filter configuration. Errors
// should name the offending field, like NetworkFilterDecoder's.
type HTTPFilterDecoder func(a *anypb.Any) (stream.FilterConfig, error)

// HTTPFilter is one HTTP (stream) filter registration: a type URL and its decoder.
type HTTPFilter struct {
	TypeURL string
	Decode  HTTPFilterDecoder
}

// ClusterReferrer is implemented by filter configurations that route to clusters; every
// name they return must be defined in the snapshot.
type ClusterReferrer interface {
	ClusterNames() []string
}

// Registry maps filter type URLs to decoders and knows which L7 codecs the program has.
// Build it once at start-up; it is read-only afterwards and then safe for concurrent use.
type Registry struct {
	network map[string]RegistryDecoder
	http    map[string]HTTPFilterDecoder
	codecs  []string
}

// NewRegistry returns an empty registry. Nothing is built in: register TCPProxyFilter(),
// HTTPConnectionManagerFilter(), RPCProxyFilter() and any other filter explicitly, and tell
// it the codecs with SetCodecs.
func NewRegistry() *Registry {
	return &Registry{network: map[string]RegistryDecoder{}, http: map[string]HTTPFilterDecoder{}}
}

func checkTypeURL(kind, typeURL string) error {
	switch {
	case typeURL == "" || !strings.Contains(typeURL, "/"):
		return fmt.Errorf("%w: %s type URL %q must look like type.googleapis.com/package.Message", ErrRegistry, kind, typeURL)
	case typeURL == TypedStructURL:
		return fmt.Errorf("%w: register the TypedStruct's inner type_url, not %s", ErrRegistry, TypedStructURL)
	}
	return nil
}

// RegisterNetworkFilter adds a decoder. The type URL must be non-empty and not registered
// yet; a filter configured through a TypedStruct is registered under the TypedStruct's
// inner type_url, not under TypedStructURL.
func (r *Registry) RegisterNetworkFilter(typeURL string, decode NetworkFilterDecoder) error {
	if decode == nil {
		return fmt.Errorf("%w: nil decoder for %s", ErrRegistry, typeURL)
	}
	return r.registerNetwork(typeURL, func(_ *Registry, a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
		return decode(a)
	})
}

func (r *Registry) registerNetwork(typeURL string, decode RegistryDecoder) error {
	if err := checkTypeURL("network filter", typeURL); err != nil {
		return err
	}
	if decode == nil {
		return fmt.Errorf("%w: nil decoder for %s", ErrRegistry, typeURL)
	}
	if _, dup := r.network[typeURL]; dup {
		return fmt.Errorf("%w: network filter %s registered twice", ErrRegistry, typeURL)
	}
	r.network[typeURL] = decode
	return nil
}

// Register adds every network filter of the list in order, stopping at the first error.
func (r *Registry) Register(filters ...NetworkFilter) error {
	for _, f := range filters {
		var err error
		switch {
		case f.Decode != nil && f.DecodeWithRegistry != nil:
			err = fmt.Errorf("%w: network filter %s sets both Decode and DecodeWithRegistry", ErrRegistry, f.TypeURL)
		case f.DecodeWithRegistry != nil:
			err = r.registerNetwork(f.TypeURL, f.DecodeWithRegistry)
		default:
			err = r.RegisterNetworkFilter(f.TypeURL, f.Decode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RegisterHTTPFilter adds an HTTP filter decoder, under the same rules as
// RegisterNetworkFilter. The router (RouterHTTPFilterTypeURL) is part of the connection
// manager and cannot be registered.
func (r *Registry) RegisterHTTPFilter(typeURL string, decode HTTPFilterDecoder) error {
	if err := checkTypeURL("HTTP filter", typeURL); err != nil {
		return err
	}
	switch {
	case typeURL == RouterHTTPFilterTypeURL:
		return fmt.Errorf("%w: %s is built into the HTTP connection manager (the last entry of http_filters); it is not registered", ErrRegistry, typeURL)
	case decode == nil:
		return fmt.Errorf("%w: nil decoder for %s", ErrRegistry, typeURL)
	}
	if _, dup := r.http[typeURL]; dup {
		return fmt.Errorf("%w: HTTP filter %s registered twice", ErrRegistry, typeURL)
	}
	r.http[typeURL] = decode
	return nil
}

// RegisterHTTPFilters adds every HTTP filter of the list in order, stopping at the first
// error.
func (r *Registry) RegisterHTTPFilters(filters ...HTTPFilter) error {
	for _, f := range filters {
		if err := r.RegisterHTTPFilter(f.TypeURL, f.Decode); err != nil {
			return err
		}
	}
	return nil
}

// SetCodecs tells the registry which L7 codecs (protocol.Registry names, e.g. "http1",
// "http2", "bolt") the program has, in order. The connection managers accept only these:
// codec_type AUTO means the available ones among http1 and http2, and an RPC proxy's
// protocol must be one of them; clusters may only force an upstream protocol that exists.
// Calling it again replaces the list.
func (r *Registry) SetCodecs(names []string) {
	r.codecs = slices.Clone(names)
}

// Codecs returns the codec names given to SetCodecs.
func (r *Registry) Codecs() []string { return slices.Clone(r.codecs) }

func (r *Registry) hasCodec(name string) bool { return slices.Contains(r.codecs, name) }

func (r *Registry) codecList() string {
	if len(r.codecs) == 0 {
		return "none; the program did not call Registry.SetCodecs"
	}
	return strings.Join(r.codecs, ", ")
}

// NetworkFilterTypes lists the registered network filter type URLs, sorted.
func (r *Registry) NetworkFilterTypes() []string {
	out := make([]string, 0, len(r.network))
	for u := range r.network {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// HTTPFilterTypes lists the registered HTTP filter type URLs, sorted (the router, built
// in, is not listed).
func (r *Registry) HTTPFilterTypes() []string {
	out := make([]string, 0, len(r.http))
	for u := range r.http {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// innerTypeURL is a's type URL, or the TypedStruct's type_url when a is a TypedStruct.
func innerTypeURL(a *anypb.Any) (string, error) {
	url := a.GetTypeUrl()
	if url == TypedStructURL {
		var ts xdstypev3.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return "", fmt.Errorf("%w: TypedStruct: %v", ErrInvalid, err)
		}
		url = ts.GetTypeUrl()
	}
	return url, nil
}

// decodeNetworkFilter finds the decoder for a (the TypedStruct's inner type_url when a is a
// TypedStruct) and runs it.
func (r *Registry) decodeNetworkFilter(a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
	url, err := innerTypeURL(a)
	if err != nil {
		return nil, err
	}
	dec, ok := r.network[url]
	if !ok {
		return nil, r.unknownFilter(url)
	}
	cfg, err := dec(r, a)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: decoder for %s returned no configuration", ErrInvalid, url)
	}
	return cfg, nil
}

// decodeHTTPFilter is decodeNetworkFilter for HTTP filters.
func (r *Registry) decodeHTTPFilter(a *anypb.Any) (stream.FilterConfig, error) {
	url, err := innerTypeURL(a)
	if err != nil {
		return nil, err
	}
	dec, ok := r.http[url]
	if !ok {
		return nil, r.unknownHTTPFilter(url)
	}
	cfg, err := dec(a)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: decoder for %s returned no configuration", ErrInvalid, url)
	}
	return cfg, nil
}

func (r *Registry) unknownFilter(url string) error {
	return fmt.Errorf("%w %q (registered: %s)", ErrUnknownFilter, url, strings.Join(r.NetworkFilterTypes(), ", "))
}

func (r *Registry) unknownHTTPFilter(url string) error {
	reg := strings.Join(r.HTTPFilterTypes(), ", ")
	if reg == "" {
		reg = "none"
	}
	return fmt.Errorf("%w %q for an HTTP filter (registered HTTP filters: %s; the last filter must be %s)", ErrUnknownFilter, url, reg, RouterHTTPFilterTypeURL)
}
