package output

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// TestSecretsNeverLeak drives every sender through its failure paths with
// a debug logger and checks that no error string, log line or metric holds
// the intake key, an http header's secret or any secret-bearing part of one
// (a bearer token, a Basic credential's base64 and user:pass, a URL's path
// token and query token), even when the intake echoes them back, alone or
// where the quoted body is cut.
func TestSecretsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	set := metrics.NewSet()
	var errs []error
	send := func(s forward.Sender, enc forward.Encoder, payloads ...[]byte) {
		if err := s.Send(context.Background(), outBatch(t, enc, payloads...)); err != nil {
			errs = append(errs, err)
		}
	}
	echo := "unknown intake key " + testKey
	faults := []intaketest.Fault{
		{Status: 500, Body: echo}, {Status: 401, Body: echo}, {Status: 400, Body: `{"intake_key":"` + testKey + `"}`},
		{Status: 429, RetryAfter: "1", Body: echo}, {Status: 200, Body: `{"event_ids":[]}`}, {Hang: true}, {Close: true},
	}

	for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
		in := intaketest.NewSekoiaHTTP(t, testKey)
		in.RejectLarger(5000)
		s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey, Endpoint: ep,
			Timeout: 200 * time.Millisecond, TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, set, "sek-"+ep, log)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range faults {
			in.FailNext(1, f)
			send(s, s.Encoder(), outAlerts(3, 1000)...)
		}
		send(s, s.Encoder(), outAlert(1, 9000)) // 413, dropped
		// The quoted body is cut at 160 bytes: a key starting at byte 150
		// straddles the cut, and its first 10 characters must not show.
		in.FailNext(1, intaketest.Fault{Status: 500, Body: strings.Repeat("x", 150) + testKey + " is not a valid intake key"})
		send(s, s.Encoder(), outAlerts(1, 100)...)
		s.Close()
		wrongCA, _ := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey, Endpoint: ep}, set, "sek-ca", log)
		send(wrongCA, wrongCA.Encoder(), outAlert(1, 100))
	}

	const (
		token      = "Bearer hunter2-TOKEN"
		basic      = "Basic c3ZjLXJlbGF5Omh1bnRlcjMtUEFTUw==" // svc-relay:hunter3-PASS
		pathToken  = "1a2b3c4d-5e6f-4a1b-9c8d-hunter4PATH"    // a Rapid7 webhook's /v1/noformat/<token>
		queryToken = "hunter5-QUERY"
	)
	in := intaketest.NewSekoiaHTTP(t, testKey)
	h, err := NewHTTPSender(HTTPConfig{URL: in.URL() + "/v1/noformat/" + pathToken + "?api_key=" + queryToken,
		Headers: map[string]string{"Authorization": token, "Proxy-Authorization": basic},
		Timeout: 200 * time.Millisecond, TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, set, "http", log)
	if err != nil {
		t.Fatal(err)
	}
	// Each part alone, as an intake that quotes what it did not like does.
	for _, part := range []string{token, "hunter2-TOKEN", basic, "c3ZjLXJlbGF5Omh1bnRlcjMtUEFTUw==",
		"svc-relay:hunter3-PASS", "wrong password hunter3-PASS", pathToken, queryToken} {
		for _, f := range faults {
			in.FailNext(1, intaketest.Fault{Status: f.Status, Body: strings.ReplaceAll(f.Body, testKey, part), Hang: f.Hang, Close: f.Close})
			send(h, h.Encoder(), outAlerts(3, 1000)...)
		}
	}

	closed := outClosedAddr(t)
	sl := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Key: testKey, ReadBuffer: 4096})
	for _, addr := range []string{closed, sl.Addr()} {
		s, err := NewSyslogSender(SyslogConfig{Address: addr, AckTimeout: 200 * time.Millisecond,
			SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}, set, "syslog", log)
		if err != nil {
			t.Fatal(err)
		}
		send(s, s.Encoder(), outAlerts(2, 500)...)
		sl.Stall()
		send(s, s.Encoder(), outAlerts(100, 1500)...)
		s.Close()
	}
	sl.Resume()

	var all strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
	}
	if len(errs) < 20 {
		t.Fatalf("only %d failures were provoked:\n%s", len(errs), all.String())
	}
	all.Write(logs.Bytes())
	set.WritePrometheus(&all)
	for _, secret := range []string{testKey, testKey[:10], "hunter2", "hunter3", "c3ZjLXJlbGF5", "hunter4", "hunter5"} {
		if i := strings.Index(all.String(), secret); i >= 0 {
			t.Fatalf("secret %q leaked: ...%s...", secret, all.String()[max(i-200, 0):i+len(secret)])
		}
	}
	t.Logf("%d errors, %d bytes of logs and metrics checked", len(errs), all.Len())
}

// outClosedAddr returns a loopback address nobody listens on.
func outClosedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
