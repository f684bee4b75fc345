// Package bench is Strait's whole-system benchmark harness: it renders each proxy's
// configuration from a template per workload mode, starts the backend, the proxy under test and
// the load generator pinned to their CPUs, alternates targets round by round, and writes a
// Markdown report with a PNG chart (see benchmarks/README.md for the method and the command).
//
// Who may call it: benchmarks/cmd/straitbench. Nothing in Strait itself imports it.
//
// Adding a workload takes a template per proxy under templates/<mode>/ and one entry in
// Workloads: its mode (which templates), and its load (wrk against a path, or the idle meter).
package bench
