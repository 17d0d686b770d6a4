package parser

import "errors"

// Style is the header style a frame was sent with.
type Style uint8

const (
	// StyleBare is a frame with no recognisable syslog header (bare JSON or
	// anything else); the whole trimmed frame is the payload.
	StyleBare Style = iota
	// Style3164 is a BSD header: "<PRI>Mmm dd hh:mm:ss HOST TAG MSG", PRI optional.
	Style3164
	// Style5424 is "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
	Style5424
)

func (s Style) String() string {
	switch s {
	case Style3164:
		return "rfc3164"
	case Style5424:
		return "rfc5424"
	}
	return "bare"
}

// Span is a half-open byte range [Start, End) into the frame given to Scan.
// The zero Span is empty.
type Span struct{ Start, End int32 }

// Bytes returns the spanned bytes of frame, or nil when the span is empty.
// The result aliases frame.
func (s Span) Bytes(frame []byte) []byte {
	if s.End <= s.Start {
		return nil
	}
	return frame[s.Start:s.End]
}

// Len returns the length of the span.
func (s Span) Len() int { return int(s.End - s.Start) }

// Header holds the syslog header fields of one frame as offsets into it.
// A field absent from the frame (or given as the RFC 5424 nil value "-") is
// an empty Span.
type Header struct {
	Style     Style
	Pri       int16 // 0..191, or -1 when the frame has no PRI
	Timestamp Span  // as received, unparsed
	Host      Span
	App       Span // RFC 5424 APP-NAME, RFC 3164 TAG
	ProcID    Span
	MsgID     Span
	SD        Span // RFC 5424 structured data, "-" excluded
	// Payload is the MSG part trimmed of surrounding blanks (spaces, tabs,
	// CR, LF, NUL) and of a leading UTF-8 BOM; for an alert it is the JSON
	// object, byte for byte.
	Payload Span
}

// Kind is the family of a Darktrace alert, told apart by the payload's shape.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindModelBreach
	KindAIAnalyst
	KindAntigena
	KindSystemStatus
	KindEmail
	KindAudit
	KindTest
	// KindHeartbeat is dtrelay's own heartbeat event (the heartbeat
	// configuration key); the classifier never returns it.
	KindHeartbeat
	numKinds
)

// NumKinds is the number of kinds: a Kind is always below it.
const NumKinds = int(numKinds)

var kindNames = [numKinds]string{"unknown", "model_breach", "ai_analyst", "antigena", "system_status", "email", "audit", "test", "heartbeat"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds lists every kind, in order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// ParseKind returns the Kind named s (as in the configuration's routes).
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return KindUnknown, false
}

// Priority is the alert priority as Rapid7 InsightIDR derives it
// (DESIGN.md §2). Priorities are ordered: None < Low < Medium < High.
type Priority uint8

const (
	PriorityNone Priority = iota // informational: InsightIDR raises no alert
	PriorityLow
	PriorityMedium
	PriorityHigh
)

var priorityNames = [...]string{"none", "low", "medium", "high"}

func (p Priority) String() string {
	if int(p) < len(priorityNames) {
		return priorityNames[p]
	}
	return "none"
}

// ParsePriority returns the Priority named s.
func ParsePriority(s string) (Priority, bool) {
	for i, n := range priorityNames {
		if n == s {
			return Priority(i), true
		}
	}
	return PriorityNone, false
}

// MaxIDLen is the longest alert id kept in Alert.ID; longer ids are truncated.
const MaxIDLen = 64

// Alert is what Classify reads from a payload: what routes, metrics and
// records use. It holds no references to the payload or the parser, so it
// may be kept and copied freely.
type Alert struct {
	Kind     Kind
	Priority Priority
	// Score is the alert score normalised to 0..1 (model breach "score",
	// AI Analyst "aiaScore"/100), or -1 when the payload has none. It
	// decides Priority.
	Score float64
}

// Details are the fields of an alert that nothing on the hot path uses, so
// that Classify does not compute them: only ClassifyDetails fills them (for
// tests, and for de-duplication). They hold no references to the payload
// or the parser.
type Details struct {
	// Time is the event time in Unix milliseconds ("time", "createdAt", ...),
	// or 0 when the payload has none.
	Time int64
	// ID is "pbid" (decimal) or "id", truncated to MaxIDLen; IDLen bytes used.
	ID    [MaxIDLen]byte
	IDLen uint8
	// Suppressed is true when InsightIDR would suppress the event (it carries
	// Antigena response data). The syslog path still forwards it.
	Suppressed bool
}

// IDBytes returns the used part of d.ID.
func (d *Details) IDBytes() []byte { return d.ID[:d.IDLen] }

// Errors returned by Classify.
var (
	// ErrNotJSON: the payload is not a JSON object.
	ErrNotJSON = errors.New("parser: payload is not a JSON object")
	// ErrTooLarge: the payload exceeds the classifier's size limit.
	ErrTooLarge = errors.New("parser: payload too large")
)
