package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/dtrelay/dtrelay/bench"
	"github.com/dtrelay/dtrelay/internal/tlsfiles"
)

func sendCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var load loadFlags
	var to, ca string
	load.register(fs, 5*time.Second)
	fs.StringVar(&to, "to", "127.0.0.1:1514", "relay input `ADDR`")
	fs.StringVar(&ca, "ca", "", "CA `FILE` to trust for --input tls (default: trust any certificate)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	scs, err := load.scenarios([]string{bench.OutputSyslog})
	if err != nil {
		return err
	}
	sc := scs[0]
	gen, err := bench.NewGenerator(sc.Mix, sc.Size, max(sc.Size, sc.MaxSize))
	if err != nil {
		return err
	}
	cfg := bench.SendConfig{Network: sc.Input, Addr: to, Conns: sc.Conns, Framing: sc.Framing, Header: sc.Header,
		Rate: sc.Rate, Count: sc.Count, Duration: sc.Duration}
	if sc.Input == "tls" {
		if cfg.TLS, err = clientTLS(ca); err != nil {
			return err
		}
	}
	s, err := bench.NewSender(cfg, gen)
	if err != nil {
		return err
	}
	st, err := s.Run(ctx)
	fmt.Fprintf(stdout, "sent %d alerts (sequence 0..%d), %d bytes in %v: %.0f alerts/s, %.1f MB/s, %d write errors\n",
		st.Sent, max(st.Sent, 1)-1, st.Bytes, st.Elapsed.Round(time.Millisecond), float64(st.Sent)/st.Elapsed.Seconds(),
		float64(st.Bytes)/st.Elapsed.Seconds()/1e6, st.WriteErrors)
	return err
}

func sinkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listen, output, key, certDir string
	var expect uint64
	var verbose bool
	fs.StringVar(&listen, "listen", "127.0.0.1:10514", "`ADDR` to listen on")
	fs.StringVar(&output, "output", bench.OutputSyslog, "what to play: syslog (TCP), tls-syslog, http or https (Sekoia /plain/batch and /batch, without or with TLS)")
	fs.StringVar(&key, "intake-key", "", "intake key to require over https (default: any)")
	fs.StringVar(&certDir, "cert-dir", "", "`DIR` to write the generated ca.pem (the CA file to give the relay), cert.pem and key.pem (default: a temp dir)")
	fs.Uint64Var(&expect, "expect", 0, "alerts sent (sequence 0..N-1): report missing ids against it at exit")
	fs.BoolVar(&verbose, "v", false, "verbose logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, verbose)
	var cert *bench.Cert
	if output != bench.OutputSyslog {
		if certDir == "" {
			d, err := os.MkdirTemp("", "dtbench-sink-")
			if err != nil {
				return err
			}
			certDir = d
		}
		c, err := bench.NewCert(certDir)
		if err != nil {
			return err
		}
		cert = c
		fmt.Fprintf(stdout, "CA file: %s\n", cert.CAFile())
	}
	tally := new(bench.Tally)
	var closeSink func() error
	switch output {
	case bench.OutputHTTPS, bench.OutputHTTP:
		tc := cert.ServerConfig()
		if output == bench.OutputHTTP {
			tc = nil
		}
		s, err := bench.NewHTTPSink(listen, tc, key, tally, log)
		if err != nil {
			return err
		}
		closeSink = s.Close
		fmt.Fprintf(stdout, "Sekoia HTTP(S) intake on %s (/plain/batch, /batch)\n", s.URL(tc != nil))
	case bench.OutputSyslog, bench.OutputTLSSyslog:
		var tc *tls.Config
		if output == bench.OutputTLSSyslog {
			tc = cert.ServerConfig()
		}
		s, err := bench.NewSyslogSink(listen, tc, tally, log)
		if err != nil {
			return err
		}
		closeSink = s.Close
		fmt.Fprintf(stdout, "%s sink on %s\n", output, s.Addr())
	default:
		return fmt.Errorf("unknown --output %q", output)
	}
	defer closeSink()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prev uint64
	for {
		select {
		case <-ctx.Done():
			closeSink()
			c := tally.Counts()
			fmt.Fprintf(stdout, "received %d distinct alerts, %d duplicates, %d malformed, %d bytes; latency p50 %v p99 %v p99.9 %v\n",
				c.Unique(), c.Duplicates, c.Malformed, c.Bytes, tally.Latency.Quantile(0.5), tally.Latency.Quantile(0.99), tally.Latency.Quantile(0.999))
			if expect > 0 {
				n, ids := tally.Missing(expect, 20)
				fmt.Fprintf(stdout, "missing %d of %d; first missing ids %v\n", n, expect, ids)
			}
			return nil
		case <-tick.C:
			u := tally.Counts().Unique()
			fmt.Fprintf(stdout, "%d alerts/s, %d received\n", u-prev, u)
			prev = u
		}
	}
}

func copyRelayCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("copy-relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listen, to, key, ca string
	var drop int
	fs.IntVar(&drop, "drop-every", 0, "drop every `N`th alert of each connection (to check loss detection)")
	fs.StringVar(&listen, "listen", "127.0.0.1:1514", "TCP `ADDR` to accept syslog on")
	fs.StringVar(&to, "to", "127.0.0.1:10514", "sink `ADDR` to forward to (octet-counted, Sekoia format)")
	fs.StringVar(&key, "intake-key", bench.IntakeKey, "intake key to put in each message")
	fs.StringVar(&ca, "ca", "", "forward over TLS, trusting this CA `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := &bench.CopyRelay{Out: to, IntakeKey: key, DropEvery: drop, Log: newLogger(stderr, false)}
	if ca != "" {
		tc, err := clientTLS(ca)
		if err != nil {
			return err
		}
		r.TLS = tc
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	return r.Serve(ln)
}

// clientTLS returns a TLS client config trusting the CA in file, or, with no
// file, any certificate (manual use against a relay's test certificate).
func clientTLS(file string) (*tls.Config, error) {
	if file == "" {
		return &tls.Config{InsecureSkipVerify: true}, nil //nolint:gosec // explicit manual mode
	}
	pool, err := tlsfiles.CAPool(file)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, nil
}

func reportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var in, out string
	fs.StringVar(&in, "results", "results.json", "results `FILE` written by compare")
	fs.StringVar(&out, "out", ".", "`DIR` to write report.html to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := bench.ReadResults(in)
	if err != nil {
		return err
	}
	if err := bench.WriteReport(out, res); err != nil {
		return err
	}
	bench.WriteTable(stdout, res)
	return nil
}
