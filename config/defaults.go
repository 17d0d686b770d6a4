package config

import (
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// Defaults filled in when a key is absent (DESIGN.md §4).
const (
	DefaultMaxMessageSize   = 256 * KiB
	DefaultMaxConnections   = 1000
	DefaultIdleTimeout      = 0 // never: TCP keep-alive reaps dead peers
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultMaxPartialBytes  = 256 * MiB
	DefaultPollInterval     = 60 * time.Second
	DefaultPollOverlap      = 5 * time.Minute
	DefaultPollTimeout      = 60 * time.Second
	DefaultStateDir         = "/var/lib/dtrelay"
	DefaultSekoiaURL        = "https://intake.sekoia.io"
	DefaultBatchMaxEvents   = 1000
	DefaultBatchMaxBytes    = 4 * MiB
	DefaultBatchMaxWait     = time.Second // HTTP outputs; syslog and file outputs: 0
	DefaultQueueSize        = 64 * MiB
	DefaultTimeout          = 30 * time.Second
	DefaultSpoolMaxSize     = 10 * GiB
	DefaultFsyncInterval    = time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultShutdownDelay    = 0
	DefaultUnreadyAfter     = 60 * time.Second
	DefaultRELPWindow       = 1024      // rsyslog omrelp has 128; see output.DefaultRelpWindow
	DefaultRELPMaxMessage   = 256 * KiB // relp outputs' max_message_size
	MaxRELPWindow           = 65536
	DefaultDedupMaxKeys     = 1_000_000
)

// Defaults of dead_letter.
const (
	DefaultDeadLetterMaxSize = 1 * GiB
	// DefaultHeartbeatInterval is heartbeat.interval.
	DefaultHeartbeatInterval = 5 * time.Minute
	// DefaultMaxSources is metrics.max_sources.
	DefaultMaxSources = 1000
	// DefaultDeadLetterDir is dead_letter.dir without a spool: the state
	// directory of the packaged service.
	DefaultDeadLetterDir = "/var/lib/dtrelay/dead-letter"
)

// complete fills in the defaults of every key that was not given, for the
// input protocols and output types that use it.
func (d *decoder) complete(c *Config) {
	if !d.isSet("shutdown_timeout") {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if !d.isSet("shutdown_delay") {
		c.ShutdownDelay = DefaultShutdownDelay
	}
	if !d.isSet("metrics.unready_after") {
		c.Metrics.UnreadyAfter = DefaultUnreadyAfter
	}
	if !d.isSet("metrics.max_sources") {
		c.Metrics.MaxSources = DefaultMaxSources
	}
	if c.Heartbeat != nil && !d.isSet("heartbeat.interval") {
		c.Heartbeat.Interval = DefaultHeartbeatInterval
	}
	if !d.isSet("max_partial_bytes") {
		c.MaxPartialBytes = DefaultMaxPartialBytes
	}
	for i := range c.Routes {
		if c.Routes[i].Name == "" {
			c.Routes[i].Name = fmt.Sprintf("route%d", i+1)
		}
	}
	for i := range c.Inputs {
		d.completeInput(&c.Inputs[i], d.inputPaths[i])
	}
	for i := range c.Outputs {
		d.completeOutput(&c.Outputs[i], d.outputPaths[i])
	}
	if s := c.Spool; s != nil {
		if !d.isSet("spool.max_size") {
			s.MaxSize = DefaultSpoolMaxSize
		}
		if !d.isSet("spool.fsync_interval") {
			s.FsyncInterval = DefaultFsyncInterval
		}
		defaultString(&s.WhenFull, "block")
	}
	if !d.isSet("dead_letter.max_size") {
		c.DeadLetter.MaxSize = DefaultDeadLetterMaxSize
	}
	if c.DeadLetter.Dir == "" {
		c.DeadLetter.Dir = DefaultDeadLetterDir
		if c.Spool != nil && c.Spool.Dir != "" {
			c.DeadLetter.Dir = filepath.Join(c.Spool.Dir, "dead-letter")
		}
	}
}

func (d *decoder) completeInput(in *Input, p string) {
	if !d.isSet(p + ".max_message_size") {
		in.MaxMessageSize = DefaultMaxMessageSize
	}
	switch in.Protocol {
	case ProtocolTCP, ProtocolTLS:
		if !d.isSet(p + ".max_connections") {
			in.MaxConnections = DefaultMaxConnections
		}
		if !d.isSet(p + ".idle_timeout") {
			in.IdleTimeout = DefaultIdleTimeout
		}
		if !d.isSet(p + ".handshake_timeout") {
			in.HandshakeTimeout = DefaultHandshakeTimeout
		}
	case ProtocolDarktraceAPI:
		if !d.isSet(p + ".interval") {
			in.Interval = DefaultPollInterval
		}
		if !d.isSet(p + ".overlap") {
			in.Overlap = DefaultPollOverlap
		}
		if !d.isSet(p + ".timeout") {
			in.Timeout = DefaultPollTimeout
		}
	}
}

func (d *decoder) completeOutput(o *Output, p string) {
	switch o.Type {
	case TypeSekoiaHTTP, TypeHTTP, TypeSyslog, TypeRELP, TypeFile:
	default:
		return // reported by validate
	}
	if !d.isSet(p + ".batch.max_events") {
		o.Batch.MaxEvents = DefaultBatchMaxEvents
	}
	if !d.isSet(p + ".batch.max_bytes") {
		o.Batch.MaxBytes = DefaultBatchMaxBytes
	}
	// HTTP outputs wait up to 1s to fill a request; a syslog or file output
	// is a stream with no per-request cost, so it sends as soon as its queue
	// is drained (under load batches still fill, as events queue meanwhile).
	if !d.isSet(p+".batch.max_wait") && (o.Type == TypeSekoiaHTTP || o.Type == TypeHTTP) {
		o.Batch.MaxWait = DefaultBatchMaxWait
	}
	if !d.isSet(p + ".queue_size") {
		o.QueueSize = DefaultQueueSize
	}
	if !d.isSet(p+".timeout") && o.Type != TypeFile {
		o.Timeout = DefaultTimeout
	}
	switch o.Type {
	case TypeSekoiaHTTP:
		defaultString(&o.URL, DefaultSekoiaURL)
		defaultString(&o.Endpoint, "plain")
		defaultString(&o.Compression, "gzip")
	case TypeHTTP:
		defaultString(&o.Compression, "gzip")
	case TypeSyslog, TypeRELP:
		if !d.isSet(p + ".tls") {
			o.TLS = true
		}
		defaultString(&o.Format, "sekoia")
		if o.Type == TypeSyslog {
			defaultString(&o.Framing, "octet-counting")
		} else {
			if !d.isSet(p + ".window") {
				o.Window = DefaultRELPWindow
			}
			if !d.isSet(p + ".max_message_size") {
				o.MaxMessageSize = DefaultRELPMaxMessage
			}
			// Four windows a batch: the answers to the first three come
			// while the sender writes, and only the last window is waited
			// for (output.RelpSender); max_bytes still bounds it.
			if !d.isSet(p+".batch.max_events") && o.Window > 0 {
				o.Batch.MaxEvents = 4 * o.Window
			}
		}
		if o.TLS && o.ServerName == "" {
			if host, _, err := net.SplitHostPort(o.Address); err == nil {
				o.ServerName = host
			}
		}
	}
}

// defaultString sets *s to def when it is empty: an empty string value
// (e.g. from "${VAR:-}") means "the default", as if the key were absent.
func defaultString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}
