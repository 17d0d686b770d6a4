//go:build !unix

package forward

import "os"

// lockFile: no flock here (dtrelay's appliance runs Linux); a replay should
// then run while the relay is stopped.
func lockFile(*os.File) (unlock func(), err error) { return func() {}, nil }
