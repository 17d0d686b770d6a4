package receiver

import (
	"time"

	"github.com/rs/zerolog"
)

// logReason names one kind of per-connection or per-message log line. Each
// has a sampler of its own, so that one noisy reason (a load balancer's
// health checks, a scanner hitting allow) cannot use up the budget of the
// others and hide them.
type logReason uint8

const (
	logAllow      logReason = iota // source not in allow
	logUntrusted                   // PROXY header from a peer not in trusted_proxies
	logMaxConns                    // max_connections reached, nothing evictable
	logEvicted                     // oldest frameless connection closed for a new one
	logPerSource                   // max_connections_per_source reached
	logProxyBad                    // bad PROXY header
	logProxyLocal                  // LOCAL header from a trusted proxy (debug)
	logTLS                         // TLS handshake failed
	logHandshake                   // handshake_timeout
	logIdle                        // idle_timeout
	logPartialCap                  // max_partial_bytes
	logOversize                    // frame over max_message_size
	logTruncated                   // frame cut by its datagram's or connection's end
	logAccept                      // accept(2) failed
	logSocket                      // a socket option could not be set
	logReadEnded                   // a read failed (debug)
	numLogReasons
)

// Each reason logs at most logBurst lines per logPeriod.
const (
	logBurst  = 5
	logPeriod = 10 * time.Second
)

// sampledLogs holds one sampled logger per logReason. It is built once per
// input and read-only afterwards; zerolog's BurstSampler is safe for
// concurrent use.
type sampledLogs [numLogReasons]zerolog.Logger

func newSampledLogs(log zerolog.Logger) *sampledLogs {
	var s sampledLogs
	for i := range s {
		s[i] = log.Sample(&zerolog.BurstSampler{Burst: logBurst, Period: logPeriod})
	}
	return &s
}

// sampled returns the logger of reason r.
func (cm *common) sampled(r logReason) *zerolog.Logger { return &cm.logs[r] }
