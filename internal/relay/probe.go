package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/output"
	"github.com/dtrelay/dtrelay/poller"
)

// ProbeInput makes the signed requests of poller.Probe for the
// darktrace-api input ic, each bounded by timeout (or the input's own
// timeout when shorter), all by ctx.
func ProbeInput(ctx context.Context, ic config.Input, timeout time.Duration) poller.ProbeResult {
	if ic.Timeout > 0 {
		timeout = min(timeout, ic.Timeout)
	}
	return poller.Probe(ctx, poller.Config{
		Name: ic.Name, URL: ic.URL, PublicToken: ic.PublicToken, PrivateToken: ic.PrivateToken,
		CAFile: ic.CAFile, NoSystemRoots: ic.NoSystemRoots, Overlap: ic.Overlap, Timeout: timeout,
		MaxEventSize: int(ic.MaxMessageSize),
	})
}

// ProbeOutput checks that output oc can be reached, without sending an
// event, through the sender the relay would use (see the Probe methods of
// package output): each connection step is bounded by timeout (or the
// output's own timeout when shorter), the whole by ctx. A file output's
// path is checked for writing without being created. It returns what was
// checked.
func ProbeOutput(ctx context.Context, oc config.Output, timeout time.Duration) (string, error) {
	if oc.Type == "file" {
		return output.ProbeFile(oc.Path)
	}
	if oc.Timeout > 0 {
		timeout = min(timeout, oc.Timeout)
	}
	oc.Timeout = timeout
	s, _, err := newSender(oc, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		return "", err
	}
	defer s.Close()
	p, ok := s.(interface {
		forward.Sender
		Probe(context.Context) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("output type %q cannot be probed", oc.Type)
	}
	return p.Probe(ctx)
}
