//go:build !linux

package main

// protectSecrets does nothing outside Linux (see protect_linux.go).
func protectSecrets() error { return nil }
