//go:build linux

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// protectSecrets keeps the intake keys and tokens this process holds out
// of core dumps and away from other processes of the same user: the
// dumpable flag cleared (no core dump; ptrace, /proc/<pid>/mem and
// /proc/<pid>/environ then need CAP_SYS_PTRACE) and RLIMIT_CORE set to 0,
// soft and hard, so that nothing raises it later. Called first thing in
// dtrelay run, before the configuration is read.
func protectSecrets() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("cannot clear the dumpable flag (PR_SET_DUMPABLE): %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("cannot set RLIMIT_CORE to 0: %w", err)
	}
	return nil
}
