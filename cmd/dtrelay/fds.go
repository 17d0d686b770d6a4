package main

import (
	"fmt"
	"syscall"

	"github.com/dtrelay/dtrelay/config"
)

// Descriptors the relay needs beside its inputs' connections: the metrics
// listener's connection cap, and a margin for listeners, outputs, the
// spool's files and the runtime.
const (
	metricsFDs = 64
	otherFDs   = 50
)

// descriptorWarning returns a warning when the inputs' max_connections,
// with the metrics listener and a margin, add up to more file descriptors
// than RLIMIT_NOFILE allows: past it, accept fails and a real sender is
// refused, whatever the connection caps say. It returns "" when the budget
// fits or cannot be known (an input without a cap, no limit to read).
// The Go runtime raises the soft limit to the hard one at start, so in
// `run` the soft limit read here is the one in force; `check` reads the
// same value for the process it would become.
func descriptorWarning(cfg *config.Config) string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) {
		return ""
	}
	conns := 0
	for _, in := range cfg.Inputs {
		if in.Protocol != "tcp" && in.Protocol != "tls" {
			continue
		}
		if in.MaxConnections <= 0 {
			return ""
		}
		conns += in.MaxConnections
	}
	need := conns + metricsFDs + otherFDs
	if conns == 0 || uint64(need) <= rl.Cur {
		return ""
	}
	return fmt.Sprintf("file descriptors: the inputs may hold %d connections (their max_connections), "+
		"plus %d for the metrics listener and about %d more, but RLIMIT_NOFILE is %d: "+
		"raise it (systemd LimitNOFILE=%d) or lower max_connections, or accepting fails before the caps apply",
		conns, metricsFDs, otherFDs, rl.Cur, need)
}
