// Package relay assembles dtrelay from its stages: it builds the outputs and
// the forward pipeline from a configuration, starts the receivers and the
// metrics listener, applies a new configuration to them on SIGHUP
// (Reload, reload.go), and stops them in reverse order. cmd/dtrelay is a thin
// main around it; tests and benchmarks use it to run a relay in-process.
package relay
