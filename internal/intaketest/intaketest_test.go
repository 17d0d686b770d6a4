package intaketest

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The mocks' checks must be able to fail, or the tests built on them prove
// nothing: these tests feed them bad input on purpose.

func TestSyslogMockChecksKeyAndFraming(t *testing.T) {
	in := NewSyslog(t, "K]ey", false)
	in.AllowProblems()
	good := `<165>1 2024-08-05T03:34:46.123Z dt darktrace - LOG [SEKOIA@53288 intake_key="K\]ey"] {"a":1}`
	wrongKey := `<165>1 2024-08-05T03:34:46.123Z dt darktrace - LOG [SEKOIA@53288 intake_key="other"] {"a":2}`
	noSD := `<165>1 2024-08-05T03:34:46.123Z dt darktrace - LOG - {"a":3}`
	notSyslog := `{"a":4}`
	c, err := net.Dial("tcp", in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := strings.Join([]string{
		strconv.Itoa(len(good)) + " " + good, good + "\n", strconv.Itoa(len(wrongKey)) + " " + wrongKey,
		noSD + "\n", notSyslog + "\n", good + "\n",
	}, "")
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	if !in.wait(5*time.Second, func() bool { return in.count+len(in.problems) == 6 }) {
		t.Fatalf("got %d events and %d problems", in.Count(), len(in.Problems()))
	}
	if ev := in.Events(); len(ev) != 3 || string(ev[0]) != `{"a":1}` {
		t.Fatalf("events %q", ev)
	}
	if p := in.Problems(); len(p) != 3 {
		t.Fatalf("problems %q", p)
	}
	if l := in.Lines(); len(l) != 6 || string(l[4]) != notSyslog {
		t.Fatalf("lines %q", l)
	}
}

func TestSyslogMockWithoutKeyRecordsAnyLine(t *testing.T) {
	in := NewSyslog(t, "", true)
	conf := &tls.Config{ServerName: SekoiaHost, RootCAs: in.pki.pool}
	c, err := tls.Dial("tcp", in.Addr(), conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "<165>Aug  5 03:34:46 dt darktrace {\"a\":1}\n<13>1 - - - - - - {\"b\":2}\n")
	if !in.WaitEvents(2, 5*time.Second) {
		t.Fatalf("got %d events", in.Count())
	}
	ev := in.Events()
	if string(ev[0]) != `<165>Aug  5 03:34:46 dt darktrace {"a":1}` || string(ev[1]) != `{"b":2}` {
		t.Fatalf("events %q", ev)
	}
}

func TestSyslogMockStopRestart(t *testing.T) {
	in := NewSyslog(t, "", false)
	addr := in.Addr()
	in.Stop()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a stopped intake accepted a connection")
	}
	in.Restart()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("restarted intake: %v", err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	if !in.WaitEvents(1, 5*time.Second) {
		t.Fatal("no event after restart")
	}
}

func TestHTTPMockChecks(t *testing.T) {
	in := NewSekoiaHTTP(t, "KEY")
	in.AllowProblems()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: in.pki.pool}}}
	post := func(path, key, body string, gz bool) int {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if gz {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			io.WriteString(w, body)
			w.Close()
			rd = &buf
		}
		req, _ := http.NewRequest(http.MethodPost, in.URL()+path, rd)
		if key != "" {
			req.Header.Set(KeyHeader, key)
		}
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		path, key, body string
		gz              bool
		want            int
	}{
		{"/plain/batch", "KEY", "{\"a\":1}\n{\"b\":2}", true, 200},
		{"/plain/batch", "KEY", "{\"a\":1}\n", false, 400}, // an empty last event
		{"/plain/batch", "nope", "{\"a\":1}", false, 401},
		{"/batch", "", `{"intake_key":"KEY","jsons":["{\"c\":3}"]}`, false, 200},
		{"/batch", "", `{"intake_key":"KEY","jsons":["x"],"extra":1}`, false, 400},
		{"/batch", "", `{"intake_key":"nope","jsons":["x"]}`, true, 401},
		{"/batch", "", `{"intake_key":"KEY","jsons":[1]}`, false, 400},
		{"/ingest", "", "{\"d\":4}\n", false, 200},
		{"/ingest", "", "{\"d\":4}", false, 400}, // NDJSON: the last line ends with LF
	}
	for i, tc := range cases {
		if got := post(tc.path, tc.key, tc.body, tc.gz); got != tc.want {
			t.Errorf("case %d %s: status %d, want %d", i, tc.path, got, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, in.URL()+"/plain/batch", strings.NewReader("not gzip"))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(KeyHeader, "KEY")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad gzip: %v %v", resp, err)
	}
	if ev := in.Events(); len(ev) != 4 || string(ev[2]) != `{"c":3}` {
		t.Fatalf("events %q", ev)
	}
	if n := len(in.Problems()); n != 7 {
		t.Fatalf("%d problems: %q", n, in.Problems())
	}
	in.FailNext(2, Fault{Status: 429, RetryAfter: "5"})
	for range 2 {
		if got := post("/plain/batch", "KEY", "x", false); got != 429 {
			t.Fatalf("fault: status %d", got)
		}
	}
	if got := post("/plain/batch", "KEY", "x", false); got != 200 {
		t.Fatalf("after the faults: status %d", got)
	}
}
