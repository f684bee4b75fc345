package bench

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// ErrUnknownTarget is returned for a target name the harness does not know.
var ErrUnknownTarget = errors.New("bench: unknown target")

// ErrNoTemplate is returned when a mode has no template for a proxy.
var ErrNoTemplate = errors.New("bench: no config template")

//go:embed templates
var templateFS embed.FS

// Kind is a proxy implementation.
type Kind string

// The proxies the harness knows. Direct is no proxy: load goes straight to the backend.
const (
	KindDirect  Kind = "direct"
	KindNginx   Kind = "nginx"
	KindHAProxy Kind = "haproxy"
	KindStrait  Kind = "strait"
)

// Target is one column of the comparison: a proxy (with Strait's transport) or direct.
type Target struct {
	Name      string
	Kind      Kind
	Transport string // Strait only: gnet, netpoll or stdnet
}

// StraitTransports are the transports Strait is measured on, in report order.
func StraitTransports() []string { return []string{"gnet", "netpoll", "stdnet"} }

// AllTargets lists every target in report order; Strait's only when withStrait.
func AllTargets(withStrait bool) []Target {
	ts := []Target{
		{Name: "direct", Kind: KindDirect},
		{Name: "nginx", Kind: KindNginx},
		{Name: "haproxy", Kind: KindHAProxy},
	}
	if withStrait {
		for _, tr := range StraitTransports() {
			ts = append(ts, Target{Name: "strait-" + tr, Kind: KindStrait, Transport: tr})
		}
	}
	return ts
}

// ParseTargets resolves a comma-separated list of target names ("strait" stands for all three
// transports) against AllTargets(true), keeping report order.
func ParseTargets(list string) ([]Target, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if n == "strait" {
			for _, tr := range StraitTransports() {
				want["strait-"+tr] = true
			}
			continue
		}
		want[n] = true
	}
	var out []Target
	for _, t := range AllTargets(true) {
		if want[t.Name] {
			out = append(out, t)
			delete(want, t.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTarget, n)
	}
	return out, nil
}

// ConfigData is what a config template sees.
type ConfigData struct {
	Dir         string // the process's private directory (pid file, logs, temp paths)
	Host        string // listen host
	Port        int    // listen port
	Addr        string // Host:Port
	BackendHost string
	BackendPort int
	Backend     string // BackendHost:BackendPort
	Transport   string // Strait's transport
	Dispatch    string // Strait's request_dispatch (empty: the default)
	// Limits sized for the idle workload under the 20,000 open-files cap.
	RlimitNofile      int
	WorkerConnections int
	MaxConn           int
	StreamModule      string // nginx's ngx_stream_module.so
}

// templateName is the template file for a proxy kind in a mode.
func templateName(mode string, k Kind) string {
	switch k {
	case KindNginx:
		return "templates/" + mode + "/nginx.conf.tmpl"
	case KindHAProxy:
		return "templates/" + mode + "/haproxy.cfg.tmpl"
	case KindStrait:
		return "templates/" + mode + "/strait.yaml.tmpl"
	}
	return ""
}

// backendTemplate is the HTTP/1.1 backend nginx's template, shared by the HTTP/1.1 modes.
const backendTemplate = "templates/backend.nginx.conf.tmpl"

// backendH2CTemplate is the HTTP/2 (h2c) backend nginx's template.
const backendH2CTemplate = "templates/backend-h2c.nginx.conf.tmpl"

// nginxBackendTemplate is the template of an nginx backend kind, "" when the backend is not
// nginx.
func nginxBackendTemplate(b Backend) string {
	switch b {
	case BackendHTTP1:
		return backendTemplate
	case BackendH2C:
		return backendH2CTemplate
	}
	return ""
}

// Render fills template file name with d.
func Render(name string, d ConfigData) ([]byte, error) {
	src, err := fs.ReadFile(templateFS, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoTemplate, name)
		}
		return nil, fmt.Errorf("bench: read template %s: %w", name, err)
	}
	t, err := template.New(filepath.Base(name)).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("bench: parse template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("bench: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Modes lists the modes that have templates.
func Modes() []string {
	ents, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// newConfigData fills the limits shared by every process.
func newConfigData(dir, host string, port int, backend string) (ConfigData, error) {
	bh, bp, err := splitHostPort(backend)
	if err != nil {
		return ConfigData{}, err
	}
	return ConfigData{
		Dir: dir, Host: host, Port: port, Addr: net.JoinHostPort(host, strconv.Itoa(port)),
		BackendHost: bh, BackendPort: bp, Backend: backend,
		RlimitNofile:      19500,
		WorkerConnections: 19000,
		MaxConn:           9000,
	}, nil
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bench: address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bench: port in %q: %w", addr, err)
	}
	return h, n, nil
}

// writeConfig renders the template into dir/file and returns its path.
func writeConfig(name, dir, file string, d ConfigData) (string, error) {
	b, err := Render(name, d)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("bench: write %s: %w", p, err)
	}
	return p, nil
}
