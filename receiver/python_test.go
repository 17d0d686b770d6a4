package receiver

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// pythonSender is a Python program sending n JSON alerts through the
// standard library's logging.handlers.SysLogHandler with its defaults
// (append_nul=True): each message is "<PRI>darktrace {json}\0", no LF, no
// octet count.
const pythonSender = `
import json, logging, logging.handlers, socket, sys
host, port, n, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
h = logging.handlers.SysLogHandler(address=(host, port), facility=logging.handlers.SysLogHandler.LOG_LOCAL4, socktype=kind)
h.ident = "darktrace "
log = logging.getLogger("dtrelay-test")
log.propagate = False
log.addHandler(h)
for i in range(n):
    log.warning(json.dumps({"pbid": i, "score": 0.9, "model": {"name": "python sender"}}, separators=(",", ":")))
h.close()
`

// runPython runs pythonSender against addr, skipping the test when python3
// is not installed.
func runPython(t *testing.T, proto, host string, port uint16, n int) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pythonSender, host, strconv.Itoa(int(port)), strconv.Itoa(n), proto).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 sender: %v\n%s", err, out)
	}
}

// TestPythonSysLogHandler: Python's SysLogHandler ends each message with
// NUL and sends no LF (issue 10 item 12: all 3064 alerts of a run were one
// oversize frame). Over TCP every message must be its own frame, with the
// NUL removed; over UDP likewise, one datagram each.
func TestPythonSysLogHandler(t *testing.T) {
	for _, proto := range []string{ProtocolTCP, ProtocolUDP} {
		t.Run(proto, func(t *testing.T) {
			const n = 300
			pool := newRecPool(true)
			l, m := startInput(t, Config{Protocol: proto}, pool)
			runPython(t, proto, "127.0.0.1", addrPortOf(l.Addr()).Port(), n)
			waitFor(t, 10*time.Second, fmt.Sprintf("%d frames", n), func() bool { return pool.count.Load() >= n })
			frames := pool.snapshot()
			if len(frames) != n {
				t.Fatalf("got %d frames, want %d", len(frames), n)
			}
			seen := make(map[string]bool)
			for _, f := range frames {
				seen[string(f)] = true
			}
			for i := range n {
				want := fmt.Sprintf(`<164>darktrace {"pbid":%d,"score":0.9,"model":{"name":"python sender"}}`, i)
				if !seen[want] {
					t.Fatalf("frame %q not received; first frame: %q", want, frames[0])
				}
			}
			if o, tr := m.oversize.Get(), m.truncated.Get(); o != 0 || tr != 0 {
				t.Fatalf("oversize %d, truncated %d; want 0, 0", o, tr)
			}
		})
	}
}
