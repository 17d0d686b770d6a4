//go:build race

package forward

// outRaceEnabled: the race detector is on; allocation counts differ.
const outRaceEnabled = true
