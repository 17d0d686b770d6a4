package relay

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/parser"
)

// Heartbeat is the body of the heartbeat event, sent as
// {"dtrelay_heartbeat": Heartbeat} every heartbeat.interval, of kind
// heartbeat.
type Heartbeat struct {
	Version  string `json:"version"`
	Host     string `json:"host"` // the relay's host name, also the syslog HOSTNAME
	UptimeS  int64  `json:"uptime_s"`
	Interval int64  `json:"interval_s"`
	// SourcesSeen is the number of sources tracked (Relay.Sources);
	// SourcesSilent names those flagged silent, as "input/source".
	SourcesSeen   int      `json:"sources_seen"`
	SourcesSilent []string `json:"sources_silent"`
	// AlertsSinceLast is the number of JSON alerts received (every kind)
	// since the previous heartbeat (since the start for the first).
	AlertsSinceLast uint64               `json:"alerts_since_last"`
	Queues          []forward.QueueState `json:"queues"`
	Spool           *HeartbeatSpool      `json:"spool,omitempty"`
}

// HeartbeatSpool is the spool's state in a heartbeat.
type HeartbeatSpool struct {
	Bytes      int64 `json:"bytes"`
	Capacity   int64 `json:"capacity"` // spool.max_size
	OldestAgeS int64 `json:"oldest_age_s"`
}

// startHeartbeat sends the heartbeat every h.Interval until stop closes.
func (r *Relay) startHeartbeat(h *config.Heartbeat, stop <-chan struct{}) {
	var mask uint64
	for _, name := range h.Outputs {
		for i, oc := range r.cfg.Outputs {
			if oc.Name == name {
				mask |= 1 << uint(i)
			}
		}
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "dtrelay"
	}
	version := Version
	started := time.Now()
	r.sources.takeAlerts() // counted from the start
	go func() {
		tick := time.NewTicker(h.Interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			hb := r.heartbeat(version, host, started, h.Interval)
			frame, err := heartbeatFrame(time.Now(), host, hb)
			if err != nil {
				r.log.Error().Err(err).Msg("cannot encode the heartbeat")
				continue
			}
			if sent := r.pipe.Inject(frame, parser.KindHeartbeat, mask); sent == 0 {
				r.log.Warn().Msg("heartbeat routed to no output")
			} else {
				r.log.Debug().Strs("outputs", r.pipe.OutputNames(sent)).Msg("heartbeat sent")
			}
		}
	}()
}

func (r *Relay) heartbeat(version, host string, started time.Time, interval time.Duration) Heartbeat {
	hb := Heartbeat{Version: version, Host: host, UptimeS: int64(time.Since(started).Seconds()), Interval: int64(interval.Seconds()),
		SourcesSilent: []string{}, AlertsSinceLast: r.sources.takeAlerts(), Queues: r.pipe.Queues()}
	for _, s := range r.Sources() {
		hb.SourcesSeen++
		if s.Silent {
			hb.SourcesSilent = append(hb.SourcesSilent, s.Input+"/"+s.Source)
		}
	}
	if r.spool != nil {
		st := r.spool.Stats()
		hb.Spool = &HeartbeatSpool{Bytes: st.Bytes, Capacity: int64(r.cfg.Spool.MaxSize), OldestAgeS: int64(st.OldestAge.Seconds())}
	}
	return hb
}

// heartbeatFrame is the heartbeat as an RFC 5424 message: PRI 14 (user,
// info), APP-NAME dtrelay, MSGID heartbeat.
func heartbeatFrame(now time.Time, host string, hb Heartbeat) ([]byte, error) {
	body, err := json.Marshal(struct {
		H Heartbeat `json:"dtrelay_heartbeat"`
	}{hb})
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "<14>1 %s %s dtrelay - heartbeat - %s", now.UTC().Format("2006-01-02T15:04:05.000Z"), host, body), nil
}
