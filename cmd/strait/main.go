// Command strait runs the Strait proxy.
//
//	strait [-c FILE] [--transport gnet|netpoll|stdnet] [--log-level L] [--log-format text|json]
//	strait validate -c FILE
//	strait version
//
// With no -c, strait runs its embedded default configuration: a listener on 127.0.0.1:10000
// that forwards to a small demo upstream strait starts itself. This package is the one place
// that names every transport backend and every built-in extension.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"

	"github.com/strait-proxy/strait/pipeline/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain is main without the process exit: it serves until ctx is done (SIGTERM or SIGINT
// in main) and returns the exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintln(stdout, versionString())
			return 0
		case "validate":
			return validateCmd(args[1:], stdout, stderr)
		case "run":
			args = args[1:]
		}
	}
	fs := flag.NewFlagSet("strait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "Envoy v3 bootstrap file (YAML or JSON); empty runs the embedded default")
	transport := fs.String("transport", "", "transport backend: "+strings.Join(transportNames(), ", ")+" (overrides the config)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (overrides the config)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceFile := fs.String("trace", "", "write a Go execution trace of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strait: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "strait: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "strait: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintf(stderr, "strait: %v\n", err)
			return 1
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintf(stderr, "strait: %v\n", err)
			return 1
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	o := server.Options{ConfigName: *cfgPath, Transport: *transport, LogFormat: *logFormat, SizeScheduler: true}
	if *logLevel != "" {
		lv, err := parseLevel(*logLevel)
		if err != nil {
			fmt.Fprintf(stderr, "strait: %v\n", err)
			return 2
		}
		o.LogLevel = &lv
	}
	ext := builtins()
	if *cfgPath == "" {
		demo, err := startDemoUpstream()
		if err != nil {
			fmt.Fprintf(stderr, "strait: embedded default configuration: %v\n", err)
			return 1
		}
		defer demo.Close()
		o.ConfigName, o.ConfigData = "embedded default configuration", demo.bootstrap()
		o.Ready = func(s *server.Server) { demo.printTryIt(stdout, s) }
	}
	o.LogOutput = stderr
	if err := server.Run(ctx, o, ext); err != nil {
		fmt.Fprintf(stderr, "strait: %v\n", err)
		return 1
	}
	return 0
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("strait validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "Envoy v3 bootstrap file to validate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "strait validate: -c FILE is required")
		return 2
	}
	if err := server.Validate(server.Options{ConfigName: *cfgPath}, builtins()); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *cfgPath)
	return 0
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v == "dev" {
				v += "+" + s.Value
			}
		}
		return fmt.Sprintf("strait %s (%s)", v, bi.GoVersion)
	}
	return "strait " + v
}

func parseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
}
