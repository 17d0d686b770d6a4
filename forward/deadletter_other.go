//go:build !unix

package forward

import "os"

// lockFile: no flock here (dtrelay's appliance runs Linux); a replay should
// then run while the relay is stopped.
func lockFile(*os.File) (unlock func(), err error) { return func() {}, nil }

// oNoFollow: no O_NOFOLLOW here; the dead-letter file is checked with Lstat
// before it is used (dtrelay's appliance runs Linux).
const oNoFollow = 0
