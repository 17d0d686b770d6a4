// Package config reads, checks and describes the YAML configuration of
// dtrelay (DESIGN.md §4).
//
// Parse and Load decode strictly: the document is walked as a yaml.Node tree,
// so every problem (an unknown key, a value of the wrong type, a key that the
// input's protocol or the output's type does not use, a value that cannot
// work) is reported with its file, line and key path, for example
// "dtrelay.yaml:12: outputs[1].batch.max_evnts: unknown key (did you mean
// max_events?)". Every problem is reported at once, in an *Errors; what is
// legitimate but unusual is returned as a Warning and does not fail.
//
// Values (never keys) may name environment variables: "${NAME}" is replaced
// by the variable's value, "${NAME:-default}" by the default when the variable
// is unset or empty, and "$$" stands for a literal "$"; any other "$" is kept
// as it is. An unset variable without a default is a problem that names the
// variable.
//
// Relative file paths in a configuration read from a file (certificates, CA
// files, the spool directory, file outputs) are taken relative to the
// directory of that file, so a configuration means the same thing whatever
// the working directory of the process; the returned Config holds the
// resolved paths.
//
// Defaults are filled in after decoding, per input protocol and output type;
// a Config returned without error is complete and needs no further checks by
// its users. Secrets (intake keys, API tokens, HTTP header values) never
// appear in problems, warnings or Summary.
//
// A Config is plain data: it is not modified by this package after it has
// been returned, and may be read from any number of goroutines.
package config
