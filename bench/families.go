package bench

import (
	"fmt"
	"strings"
)

// Family is a Darktrace alert family, as told apart by the payload's shape
// (DESIGN.md §2). The names match the relay's kinds.
type Family uint8

// The families Generator can produce.
const (
	FamilyModelBreach  Family = iota // "pbid", "model", "triggeredComponents", "score"
	FamilyAIAnalyst                  // "aiaScore", "summariser", "id", "createdAt"
	FamilyAntigena                   // "iris-event-type"
	FamilySystemStatus               // "alert_name", "priority_level", "last_updated"
	FamilyEmail                      // "direction", "anomaly_score"
	FamilyAudit                      // sent with tag "darktrace_audit"
	FamilyTest                       // model breach of "Unrestricted Test Model"
	numFamilies
)

var familyNames = [numFamilies]string{"model_breach", "ai_analyst", "antigena", "system_status", "email", "audit", "test"}

func (f Family) String() string {
	if f < numFamilies {
		return familyNames[f]
	}
	return "unknown"
}

// Families lists every family, in order.
func Families() []Family {
	fs := make([]Family, numFamilies)
	for i := range fs {
		fs[i] = Family(i)
	}
	return fs
}

// ParseFamily returns the family named s.
func ParseFamily(s string) (Family, bool) {
	for i, n := range familyNames {
		if n == s {
			return Family(i), true
		}
	}
	return 0, false
}

// App returns the syslog tag Darktrace sends the family with.
func (f Family) App() string {
	if f == FamilyAudit {
		return "darktrace_audit"
	}
	return "darktrace"
}

// Placeholders in family bodies, replaced per alert by Template.Append.
// Each is the byte 0x01 and a letter; nominal widths are used for sizing.
const (
	phSeq  = "\x01S" // run-unique sequence number, decimal
	phTS   = "\x01T" // send time, Unix nanoseconds
	phMs   = "\x01M" // send time, Unix milliseconds
	phSec  = "\x01E" // send time, Unix seconds
	phUUID = "\x01U" // a UUID-shaped id unique per sequence number
)

var phWidth = map[byte]int{'S': 7, 'T': 19, 'M': 13, 'E': 10, 'U': 36}

// head is the common start of every generated alert: the two fields the sink
// reads come first so it finds them without parsing.
const head = `{"dtbench_seq":` + phSeq + `,"dtbench_ts":` + phTS + `,`

// body returns family f's JSON with reps repeated elements (the part that
// grows with size) and the string pad in a free-text field; reps < 0 gives
// the family's compact form (identifying fields only), for small sizes. The
// result contains placeholders.
func (f Family) body(reps int, pad string) string {
	var b strings.Builder
	b.WriteString(head)
	if reps < 0 {
		compact(&b, f, pad)
		b.WriteByte('}')
		return b.String()
	}
	switch f {
	case FamilyModelBreach, FamilyTest:
		modelBreach(&b, f == FamilyTest, reps, pad)
	case FamilyAIAnalyst:
		aiAnalyst(&b, reps, pad)
	case FamilyAntigena:
		antigena(&b, reps, pad)
	case FamilySystemStatus:
		systemStatus(&b, reps, pad)
	case FamilyEmail:
		email(&b, reps, pad)
	case FamilyAudit:
		audit(&b, reps, pad)
	}
	b.WriteByte('}')
	return b.String()
}

func modelBreach(b *strings.Builder, test bool, reps int, pad string) {
	name, category, priority, score := "Compromise::Beaconing Activity To External Rare", "Critical", 4, "0.874"
	if test {
		name, category, priority, score = "Unrestricted Test Model", "Informational", 0, "1.0"
	}
	fmt.Fprintf(b, `"commentCount":0,"pbid":`+phSeq+`,"time":`+phMs+`,"creationTime":`+phMs+`,`+
		`"model":{"name":%q,"pid":1197,"phid":8713,"uuid":"`+phUUID+`","logic":{"data":[{"cid":24591,"weight":1}],"targetScore":1,"type":"weightedComponentList","version":1},`+
		`"throttle":3600,"sharedEndpoints":false,"actions":{"alert":true,"antigena":{},"breach":true,"model":true,"setPriority":false,"setTag":false,"setType":false},`+
		`"tags":["AP: C2 Comms","Enhanced Monitoring"],"interval":3600,"delay":0,"sequenced":false,"active":true,"modified":"2023-11-14 09:12:44",`+
		`"activeTimes":{"devices":{},"tags":{},"type":"exclusions","version":2},"autoUpdatable":true,"autoUpdate":true,"autoSuppress":true,`+
		`"description":%q,"behaviour":"incdec1","defeats":[],"created":{"by":"System"},"edited":{"by":"System"},"version":27,"priority":%d,"category":%q,"compliance":false},`+
		`"triggeredComponents":[`, name, "A device is beaconing to a rare external endpoint.\n\nAction: Review the device and the endpoint. "+pad, priority, category)
	for i := 0; i < reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"time":`+phMs+`,"cbid":%d,"cid":24591,"chid":%d,"size":%d,"threshold":10,"interval":3600,`+
			`"logic":{"data":{"left":{"left":"A","operator":"AND","right":"B"},"operator":"AND","right":"C"},"version":"v0.1"},"metric":{"mlid":%d,"name":"externalconnections","label":"External Connections"},`+
			`"triggeredFilters":[{"cfid":%d,"id":"A","filterType":"Destination IP","arguments":{"value":"185.199.%d.%d"},"comparatorType":"does not match","trigger":{"value":"185.199.%d.%d"}},`+
			`{"cfid":%d,"id":"B","filterType":"Rare external endpoint","arguments":{"value":90},"comparatorType":">","trigger":{"value":"100"}},`+
			`{"cfid":%d,"id":"d1","filterType":"Connection hostname","arguments":{},"comparatorType":"display","trigger":{"value":"cdn%d.example-rare.net"}}]}`,
			410000+i, 29000+i, 11+i%7, 17+i%3, 280000+3*i, i%250, 1+i%200, i%250, 1+i%200, 280001+3*i, 280002+3*i, i)
	}
	fmt.Fprintf(b, `],"score":%s,"device":{"did":1024,"ip":"10.12.14.21","sid":12,"hostname":"ws-fin-021.corp.example.com","firstSeen":1671027693000,"lastSeen":`+phMs+`,"typename":"desktop","typelabel":"Desktop"}`, score)
}

func aiAnalyst(b *strings.Builder, reps int, pad string) {
	fmt.Fprintf(b, `"summariser":"BeaconSummary","acknowledged":false,"pinned":false,"createdAt":`+phMs+`,"attackPhases":[5],"mitreTactics":["command-and-control"],`+
		`"title":"Unusual Repeated Connections","id":"`+phUUID+`","children":["`+phUUID+`"],"category":"critical","currentGroup":"g`+phUUID+`",`+
		`"groupCategory":"critical","groupScore":72.4,"groupPreviousGroups":[],"activityId":"da39a3ee","groupingIds":["511a418e"],"groupByActivity":false,`+
		`"userTriggered":false,"externalTriggered":false,"aiaScore":86.7,"summary":%q,"periods":[{"start":`+phMs+`,"end":`+phMs+`}],`+
		`"breachDevices":[{"identifier":"ws-fin-021","hostname":"ws-fin-021.corp.example.com","ip":"10.12.14.21","mac":"00:1a:2b:3c:4d:5e","subnet":null,"did":1024,"sid":12}],`+
		`"relatedBreaches":[{"modelName":"Compromise / Beaconing Activity To External Rare","pbid":`+phSeq+`,"threatScore":74.0,"timestamp":`+phMs+`}],"details":[`,
		"The device ws-fin-021 was observed making repeated connections to a rare external endpoint. "+pad)
	for i := 0; i < reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `[{"header":"Breaching Device","contents":[{"key":null,"type":"device","values":[{"identifier":"ws-fin-021","hostname":"ws-fin-021.corp.example.com","ip":"10.12.14.21","did":1024,"sid":12}]}]},`+
			`{"header":"Beaconing Endpoint %d","contents":[{"key":"Endpoint","type":"externalHost","values":[{"hostname":"cdn%d.example-rare.net","ip":"185.199.%d.%d"}]},`+
			`{"key":"Connection count","type":"integer","values":[%d]},{"key":"Ports","type":"integer","values":[443,8443]},`+
			`{"key":"Percentage of rarity","type":"percentage","values":[100]}]}]`, i+1, i, i%250, 1+i%200, 40+i)
	}
	b.WriteString(`]`)
}

func antigena(b *strings.Builder, reps int, pad string) {
	fmt.Fprintf(b, `"url":"https://darktrace-dt/#actions/`+phSeq+`","iris-event-type":"antigena_state_change","codeuuid":"`+phUUID+`","codeid":537,`+
		`"action_family":"NETWORK","action":"CREATE_NEEDSCONFIRMATION","username":"jdoe","reason":%q,"start":`+phSec+`,"end":`+phSec+`,`+
		`"did":901,"pbid":`+phSeq+`,"action_creator":"","model":"Antigena / Network / External Threat / Antigena Suspicious Activity Block",`+
		`"inhibitor":"Block matching connections","device":{"did":901,"macaddress":"00:11:22:33:44:55","vendor":"Dell Inc.","ip":"10.12.14.21","ips":[`, pad)
	for i := 0; i <= reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"ip":"10.12.%d.%d","timems":`+phMs+`,"time":"2024-03-11 10:00:00","sid":%d,"vlan":0}`, 14+i/200, 21+i%200, 12+i%5)
	}
	b.WriteString(`],"sid":12,"hostname":"ws-fin-021","firstSeen":1671027693000,"lastSeen":` + phMs + `,"os":"Windows","typename":"desktop","typelabel":"Desktop"}`)
}

func systemStatus(b *strings.Builder, reps int, pad string) {
	fmt.Fprintf(b, `"last_updated":`+phSec+`,"uuid":"`+phUUID+`","priority":43,"priority_level":"medium","hostname":"dt-vsensor-02","ip_address":"10.1.0.5",`+
		`"message":%q,"name":"probe_error","acknowledge_timeout":null,"alert_name":"Probe Error","child_id":2,"last_updated_status":`+phSec+`,"status":"active","details":[`,
		"The probe dt-vsensor-02 reported errors since "+pad)
	for i := 0; i < reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"interface":"eth%d","dropped_packets":%d,"bandwidth_mbps":%d,"last_seen":`+phSec+`}`, i%8, 1000+i*37, 120+i)
	}
	b.WriteString(`]`)
}

func email(b *strings.Builder, reps int, pad string) {
	fmt.Fprintf(b, `"url":"https://example.org/agemail/?uuid=`+phUUID+`","uuid":"`+phUUID+`","direction":"inbound","from":"billing@example-supplier.com",`+
		`"subject":%q,"timestamp":"2024-03-11 10:00:00.000000","anomaly_score":87,"tags":["Phishing Link","Unknown Sender","Spoof"],"recipients":[`, "Invoice overdue "+pad)
	for i := 0; i <= reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `"user%d@corp.example.com"`, i)
	}
	b.WriteString(`],"attachment_sha1s":[],"attachment_sha256s":[],"link_hosts":[`)
	for i := 0; i <= reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `"l%d.mailtrack.example-rare.net"`, i)
	}
	b.WriteString(`],"message_id":"<` + phUUID + `@example-supplier.com>","actions":["hold"],"attachment_names":[],"time":` + phMs)
}

func audit(b *strings.Builder, reps int, pad string) {
	fmt.Fprintf(b, `"username":"jsmith","method":"POST","endpoint":"/modelbreaches/`+phSeq+`/acknowledge","ip":"10.72.62.2","status":200,"time":`+phMs+`,`+
		`"description":%q,"params":[`, "Acknowledged model breach. "+pad)
	for i := 0; i < reps; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, `{"name":"pbid","value":"%d"},{"name":"comment","value":"reviewed by SOC shift %d"}`, 34952+i, i%3)
	}
	b.WriteString(`]`)
}

// compact writes the smallest realistic form of family f: the fields that
// identify the family and routing reads, and pad as free text.
func compact(b *strings.Builder, f Family, pad string) {
	switch f {
	case FamilyModelBreach, FamilyTest:
		name, category, priority, score := "Anomalous Connection::Data Sent to Rare Domain", "Suspicious", 3, "0.62"
		if f == FamilyTest {
			name, category, priority, score = "Unrestricted Test Model", "Informational", 0, "1.0"
		}
		fmt.Fprintf(b, `"pbid":`+phSeq+`,"time":`+phMs+`,"model":{"name":%q,"pid":1197,"uuid":"`+phUUID+`","priority":%d,"category":%q,"description":%q},`+
			`"triggeredComponents":[],"score":%s,"device":{"did":1024,"ip":"10.12.14.21"}`, name, priority, category, pad, score)
	case FamilyAIAnalyst:
		fmt.Fprintf(b, `"summariser":"BeaconSummary","createdAt":`+phMs+`,"title":"Unusual Repeated Connections","id":"`+phUUID+`","category":"critical",`+
			`"currentGroup":"g`+phUUID+`","aiaScore":86.7,"summary":%q`, pad)
	case FamilyAntigena:
		fmt.Fprintf(b, `"iris-event-type":"antigena_state_change","codeid":537,"action":"CREATE_NEEDSCONFIRMATION","start":`+phSec+`,"pbid":`+phSeq+`,"reason":%q,"device":{"did":901,"ip":"10.12.14.21"}`, pad)
	case FamilySystemStatus:
		fmt.Fprintf(b, `"last_updated":`+phSec+`,"uuid":"`+phUUID+`","priority_level":"medium","hostname":"dt-vsensor-02","alert_name":"Probe Error","status":"active","message":%q`, pad)
	case FamilyEmail:
		fmt.Fprintf(b, `"uuid":"`+phUUID+`","direction":"inbound","from":"billing@example-supplier.com","anomaly_score":87,"recipients":["user0@corp.example.com"],"time":`+phMs+`,"subject":%q`, pad)
	case FamilyAudit:
		fmt.Fprintf(b, `"username":"jsmith","method":"POST","endpoint":"/modelbreaches/`+phSeq+`/acknowledge","ip":"10.72.62.2","status":200,"time":`+phMs+`,"description":%q`, pad)
	}
}

// padText is realistic free text cut to length n (JSON-safe: no character
// needs escaping).
func padText(n int) string {
	const words = "Review the device activity and the connections made around the time of the breach. " +
		"This may indicate a compromised host communicating with attacker infrastructure, " +
		"or legitimate software with unusual update behaviour. Check the endpoint reputation, " +
		"the process responsible, and whether other devices in the subnet show the same pattern. "
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words)
	}
	return b.String()[:n]
}
