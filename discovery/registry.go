package discovery

import (
	"fmt"
	"slices"
	"strings"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/strait-proxy/strait/pipeline"
)

// TypedStructURL is the type URL of xds.type.v3.TypedStruct. A filter configured with it is
// looked up by the TypedStruct's own type_url.
const TypedStructURL = "type.googleapis.com/xds.type.v3.TypedStruct"

// NetworkFilterDecoder turns a filter's typed_config into its typed, validated configuration.
// Errors should name the offending field; *FieldError values with a Field relative to the
// typed_config get the full path prefixed.
type NetworkFilterDecoder func(a *anypb.Any) (pipeline.NetworkFilterConfig, error)

// NetworkFilter is one registration: a type URL and its decoder. cmd/strait and user
// programs register an ordered list of them.
type NetworkFilter struct {
	TypeURL string
	Decode  NetworkFilterDecoder
}

// ClusterReferrer is implemented by filter configurations that route to clusters; every
// name they return must be defined in the snapshot.
type ClusterReferrer interface {
	ClusterNames() []string
}

// Registry maps filter type URLs to decoders. Build it once at start-up; it is read-only
// afterwards and then safe for concurrent use.
type Registry struct {
	network map[string]NetworkFilterDecoder
}

// NewRegistry returns an empty registry. Nothing is built in: register TCPProxyFilter()
// and any other filter explicitly.
func NewRegistry() *Registry {
	return &Registry{network: map[string]NetworkFilterDecoder{}}
}

// RegisterNetworkFilter adds a decoder. The type URL must be non-empty and not registered
// yet; a filter configured through a TypedStruct is registered under the TypedStruct's
// inner type_url, not under TypedStructURL.
func (r *Registry) RegisterNetworkFilter(typeURL string, decode NetworkFilterDecoder) error {
	switch {
	case typeURL == "" || !strings.Contains(typeURL, "/"):
		return fmt.Errorf("%w: type URL %q must look like type.googleapis.com/package.Message", ErrRegistry, typeURL)
	case typeURL == TypedStructURL:
		return fmt.Errorf("%w: register the TypedStruct's inner type_url, not %s", ErrRegistry, TypedStructURL)
	case decode == nil:
		return fmt.Errorf("%w: nil decoder for %s", ErrRegistry, typeURL)
	}
	if _, dup := r.network[typeURL]; dup {
		return fmt.Errorf("%w: network filter %s registered twice", ErrRegistry, typeURL)
	}
	r.network[typeURL] = decode
	return nil
}

// Register adds every filter of the list in order, stopping at the first error.
func (r *Registry) Register(filters ...NetworkFilter) error {
	for _, f := range filters {
		if err := r.RegisterNetworkFilter(f.TypeURL, f.Decode); err != nil {
			return err
		}
	}
	return nil
}

// NetworkFilterTypes lists the registered type URLs, sorted.
func (r *Registry) NetworkFilterTypes() []string {
	out := make([]string, 0, len(r.network))
	for u := range r.network {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// decodeNetworkFilter finds the decoder for a (the TypedStruct's inner type_url when a is a
// TypedStruct) and runs it.
func (r *Registry) decodeNetworkFilter(a *anypb.Any) (pipeline.NetworkFilterConfig, error) {
	url := a.GetTypeUrl()
	if url == TypedStructURL {
		var ts xdstypev3.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return nil, fmt.Errorf("%w: TypedStruct: %v", ErrInvalid, err)
		}
		url = ts.GetTypeUrl()
	}
	dec, ok := r.network[url]
	if !ok {
		return nil, r.unknownFilter(url)
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
