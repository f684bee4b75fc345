// Package discovery owns Strait's configuration: it loads an Envoy v3 bootstrap (YAML or
// JSON), decodes it strictly, translates its resources into the typed runtime snapshot the
// data path runs (listeners with their network filter configs: tcp_proxy, the HTTP
// connection manager with its HTTP filters and inline route table, Strait's RPC proxy for
// Bolt; clusters with their upstream HTTP protocol options), and runs the clusters
// themselves: endpoints, STRICT_DNS resolution, circuit-breaker thresholds and load
// balancing (one policy per folder under lb/).
//
// Decoding is strict. Every unknown field, every Envoy field Strait does not implement yet,
// every unregistered filter type and every dangling reference is an error naming the file,
// the resource and the field; all errors are reported at once (errors.Join), and a snapshot
// is only returned when there are none. The per-resource translators (TranslateListener,
// TranslateCluster, TranslateRouteConfiguration) are exported so the xDS client builds the
// very same snapshot from resources that arrive over ADS.
//
// Who may call it: cmd/strait (Load, NewRegistry with the built-in filters and the codec
// names, NewClusterManager) and user programs that add their own network or HTTP filters to
// a Registry. The data path reaches clusters only through pipeline.ClusterManager (and
// pipeline.ConnPoolSettings); discovery never touches its buffers.
package discovery
