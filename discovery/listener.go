package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/strait-proxy/strait/pipeline"
)

// TranslateListener turns an Envoy listener into its runtime configuration. Supported: name,
// address.socket_address (an IP, port_value, TCP), exactly one filter chain without
// filter_chain_match, whose filters each have a name and a typed_config that reg decodes.
// Every problem is reported (errors.Join of *FieldError, Resource `listener "name"`).
// Cross-resource checks (clusters, duplicate names and addresses) are the snapshot's.
func TranslateListener(l *listenerv3.Listener, reg *Registry) (pipeline.ListenerConfig, error) {
	var e errs
	cfg := pipeline.ListenerConfig{Name: l.GetName()}
	checkSupported(l.ProtoReflect(), "", &e)
	if l.GetName() == "" {
		e.add("name", fmt.Errorf("%w: a listener needs a name", ErrInvalid))
	}
	if l.GetAddress().GetSocketAddress() == nil {
		e.add("address", fmt.Errorf("%w: socket_address is required", ErrInvalid))
	} else if addr, err := socketAddress(l.GetAddress().GetSocketAddress(), true); err != nil {
		e.add("address.socket_address", err)
	} else {
		cfg.Address = addr
	}
	chains := l.GetFilterChains()
	if len(chains) != 1 {
		e.add("filter_chains", fmt.Errorf("%d filter chains are %w (exactly one is)", len(chains), ErrUnsupported))
	}
	if reg == nil {
		e.add("", fmt.Errorf("%w: no filter registry", ErrRegistry))
	} else if len(chains) > 0 {
		filters := chains[0].GetFilters()
		if len(filters) == 0 {
			e.add("filter_chains[0].filters", fmt.Errorf("%w: at least one filter is required", ErrInvalid))
		}
		for i, f := range filters {
			path := "filter_chains[0].filters[" + strconv.Itoa(i) + "]"
			if f.GetTypedConfig() == nil {
				e.add(path+".typed_config", fmt.Errorf("%w: typed_config is required", ErrInvalid))
				continue
			}
			fc, err := reg.decodeNetworkFilter(f.GetTypedConfig())
			if err != nil {
				e.add(path+".typed_config", err)
				continue
			}
			cfg.FilterChain = append(cfg.FilterChain, pipeline.NamedFilter{Name: f.GetName(), Config: fc})
		}
	}
	if len(e.list) == 0 {
		// Envoy's own constraints (protoc-gen-validate rules) not covered above.
		if err := l.ValidateAll(); err != nil {
			e.add("", fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	if len(e.list) == 0 {
		if err := cfg.Validate(); err != nil {
			e.add("", err)
		}
	}
	if len(e.list) > 0 {
		return pipeline.ListenerConfig{}, errorsIn(fmt.Sprintf("listener %q", l.GetName()), e.err())
	}
	return cfg, nil
}

// socketAddress checks a socket address and returns "ip:port". Listeners and STATIC
// endpoints need an IP; STRICT_DNS endpoints (needIP false) may name a host.
func socketAddress(sa *corev3.SocketAddress, needIP bool) (string, error) {
	var e errs
	port := sa.GetPortValue()
	if port > 65535 {
		e.add("port_value", fmt.Errorf("%w: %d is above 65535", ErrInvalid, port))
	}
	host := sa.GetAddress()
	if host == "" {
		e.add("address", fmt.Errorf("%w: address is required", ErrInvalid))
		return "", e.err()
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ip.Zone() != "":
		e.add("address", fmt.Errorf("%q: zoned addresses are %w", host, ErrUnsupported))
	case err != nil && needIP:
		e.add("address", fmt.Errorf("%w: %q is not an IP address", ErrInvalid, host))
	case err != nil && !validHostname(host):
		e.add("address", fmt.Errorf("%w: %q is neither an IP address nor a DNS name", ErrInvalid, host))
	}
	if len(e.list) > 0 {
		return "", e.err()
	}
	if err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)).String(), nil
	}
	return host + ":" + strconv.Itoa(int(port)), nil
}

// validHostname accepts RFC 1123 names (letters, digits, '-', '_', dots; labels up to 63).
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return true
}

// errorsIn labels a translator's FieldErrors with their resource.
func errorsIn(resource string, err error) error {
	return errors.Join(located("", resource, err)...)
}
