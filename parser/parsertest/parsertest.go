// Package parsertest builds synthetic, Darktrace-shaped syslog frames for
// tests and load generators: Alert writes a JSON alert of a chosen family
// and exact size, Frame wraps a payload in one of the header styles
// Darktrace masters and relays send. Hosts, addresses and values are made
// up (example.net, 192.0.2.0/24, 198.51.100.0/24). Both functions append to
// dst and are safe for concurrent use.
package parsertest

import (
	"fmt"
	"strconv"

	"github.com/dtrelay/dtrelay/parser"
)

// Style is a header style for Frame.
type Style uint8

const (
	// RFC5424 is "<165>1 2022-03-10T10:11:10+00:00 HOST APP - - - MSG".
	RFC5424 Style = iota
	// RFC3164 is "<165>Aug  5 03:34:46 HOST APP MSG" (space-padded day).
	RFC3164
	// RFC3164ZeroDay is "<165>Apr 01 14:39:18 HOST APP MSG".
	RFC3164ZeroDay
	// RFC3164NoPri is "Apr 01 14:39:18 HOST APP MSG", as relays that strip
	// the PRI forward it.
	RFC3164NoPri
	// Bare is the payload alone.
	Bare
)

// Styles lists every Style.
var Styles = []Style{RFC5424, RFC3164, RFC3164ZeroDay, RFC3164NoPri, Bare}

func (s Style) String() string {
	switch s {
	case RFC5424:
		return "rfc5424"
	case RFC3164:
		return "rfc3164"
	case RFC3164ZeroDay:
		return "rfc3164_zero_day"
	case RFC3164NoPri:
		return "rfc3164_no_pri"
	case Bare:
		return "bare"
	}
	return "style(" + strconv.Itoa(int(s)) + ")"
}

// Host is the HOST that Frame writes.
const Host = "dt-master.example.net"

// Frame appends to dst the payload wrapped in a header of style s with
// APP/TAG app ("darktrace" or "darktrace_audit"; Bare ignores it). The
// result has no framing (no trailing LF, no octet count).
func Frame(dst []byte, s Style, app string, payload []byte) []byte {
	switch s {
	case RFC5424:
		dst = append(dst, "<165>1 2022-03-10T10:11:10+00:00 "+Host+" "...)
		dst = append(dst, app...)
		dst = append(dst, " - - - "...)
	case RFC3164:
		dst = append(dst, "<165>Aug  5 03:34:46 "+Host+" "...)
		dst = append(dst, app...)
		dst = append(dst, ' ')
	case RFC3164ZeroDay:
		dst = append(dst, "<165>Apr 01 14:39:18 "+Host+" "...)
		dst = append(dst, app...)
		dst = append(dst, ' ')
	case RFC3164NoPri:
		dst = append(dst, "Apr 01 14:39:18 "+Host+" "...)
		dst = append(dst, app...)
		dst = append(dst, ' ')
	}
	return append(dst, payload...)
}

// Alert appends to dst a synthetic alert of the given kind, exactly size
// bytes long when size is larger than the kind's minimal form (else the
// minimal form). seq makes it unique: it becomes the pbid / id / uuid and
// shifts the time. KindModelBreach and KindTest grow by adding triggered
// filters (none below ~0.6 KB), KindAIAnalyst by adding detail sections;
// every kind then pads a free-text field to the exact size. KindUnknown gives a JSON object of
// no Darktrace family; KindAudit an audit record (send it with the tag
// "darktrace_audit").
func Alert(dst []byte, kind parser.Kind, seq uint64, size int) []byte {
	start := len(dst)
	var head, tail []byte
	switch kind {
	case parser.KindModelBreach, parser.KindTest:
		head, tail = modelBreach(kind, seq, size)
	case parser.KindAIAnalyst:
		head, tail = aiAnalyst(seq, size)
	default:
		head, tail = small(kind, seq)
	}
	dst = append(dst, head...)
	for n := size - (len(head) + len(tail)); n > 0; n-- {
		dst = append(dst, filler[(len(dst)-start)%len(filler)])
	}
	return append(dst, tail...)
}

const filler = "Synthetic padding for dtrelay tests, no meaning. "

func modelBreach(kind parser.Kind, seq uint64, size int) (head, tail []byte) {
	name := "Anomalous Connection::Data Sent to Rare Domain"
	if kind == parser.KindTest {
		name = parser.TestModelName
	}
	t := 1657544648000 + int64(seq)*1000
	head = fmt.Appendf(nil, `{"pbid":%d,"time":%d,"creationTime":%d,"model":{"name":%q,"pid":4211,`+
		`"actions":{"alert":true,"antigena":{}},"priority":3,"category":"Suspicious","description":"`,
		seq, t, t+7000, name)
	tail = fmt.Appendf(nil, `"},"triggeredComponents":[{"time":%d,"cbid":%d,"cid":2311,`+
		`"metric":{"label":"External Connections"},"triggeredFilters":[`, t-1000, seq)
	for i := 0; ; i++ {
		f := fmt.Appendf(nil, `{"cfid":%d,"id":"d%d","filterType":"Destination IP",`+
			`"arguments":{},"comparatorType":"display","trigger":{"value":"198.51.100.%d"}}`,
			90000+i, i, i%250+1)
		if len(head)+len(tail)+len(f)+1+len(mbEnd)+1 > size {
			break
		}
		if i > 0 {
			tail = append(tail, ',')
		}
		tail = append(tail, f...)
	}
	return head, fmt.Appendf(tail, mbEnd, seq%250+1)
}

const mbEnd = `]}],"score":0.674,"device":{"did":17,"ip":"192.0.2.%d","hostname":"ws-17.example.net"}}`

func aiAnalyst(seq uint64, size int) (head, tail []byte) {
	t := 1697334832520 + int64(seq)*1000
	head = fmt.Appendf(nil, `{"summariser":"BeaconSummary","acknowledged":false,"pinned":false,`+
		`"createdAt":%d,"attackPhases":[2],"mitreTactics":["command-and-control"],`+
		`"title":"Unusual Repeated Connections","id":"00000000-0000-4000-8000-%012d",`+
		`"category":"critical","groupScore":12.5,"aiaScore":87.5,"summary":"`, t, seq%1e12)
	tail = fmt.Appendf(nil, `","breachDevices":[{"hostname":"ws-17.example.net","ip":"192.0.2.%d",`+
		`"did":17,"sid":3}],"details":[`, seq%250+1)
	for i := 0; ; i++ {
		d := fmt.Appendf(nil, `[{"header":"Endpoint %d","contents":[{"key":"IP address",`+
			`"type":"externalHost","values":[{"hostname":"198.51.100.%d","ip":"198.51.100.%d"}]}]}]`,
			i, i%250+1, i%250+1)
		if len(head)+len(tail)+len(d)+1+len(aiEnd)+1 > size {
			break
		}
		if i > 0 {
			tail = append(tail, ',')
		}
		tail = append(tail, d...)
	}
	return head, append(tail, aiEnd...)
}

const aiEnd = `]}`

func small(kind parser.Kind, seq uint64) (head, tail []byte) {
	switch kind {
	case parser.KindAntigena:
		return fmt.Appendf(nil, `{"iris-event-type":"antigena_state_change","action_family":"NETWORK",`+
				`"action":"CREATE_NEEDSCONFIRMATION","start":%d,"end":%d,"did":17,"pbid":%d,`+
				`"model":"synthetic_model","reason":"`, 1702896511+seq, 1702903711+seq, seq),
			[]byte(`"}`)
	case parser.KindSystemStatus:
		return fmt.Appendf(nil, `{"last_updated":%d.5,"uuid":"00000000-0000-4000-8000-%012d",`+
			`"priority":53,"priority_level":"medium","hostname":"probe-1","alert_name":"Probe Error",`+
			`"status":"Active","message":"`, 1648817054+seq, seq%1e12), []byte(`"}`)
	case parser.KindEmail:
		return fmt.Appendf(nil, `{"uuid":"00000000-0000-4000-8000-%012d","direction":"inbound",`+
			`"from":"sender@example.net","anomaly_score":64,"time":%d,"subject":"`,
			seq%1e12, 1781795094188+int64(seq)), []byte(`"}`)
	case parser.KindAudit:
		return fmt.Appendf(nil, `{"username":"user%d","method":"POST","endpoint":"/login",`+
			`"ip":"192.0.2.9","status":302,"description":"`, seq), []byte(`"}`)
	}
	return fmt.Appendf(nil, `{"seq":%d,"note":"`, seq), []byte(`"}`)
}
