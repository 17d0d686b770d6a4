package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/relay"
	"github.com/dtrelay/dtrelay/internal/secret"
	"github.com/dtrelay/dtrelay/poller"
)

// Bounds of `dtrelay check --online`: each check (a connection step, a
// request) takes at most onlineCheckTimeout, all of them together (they
// run concurrently) at most onlineTotalTimeout.
const (
	onlineCheckTimeout = 10 * time.Second
	onlineTotalTimeout = 30 * time.Second
)

// runCheckOnline is `dtrelay check --online`: the offline check first (its
// output and its exit code when it fails), then one line per input and
// output on stdout with what reaching it found; exit 1 if any failed.
func runCheckOnline(path string, stdout, stderr io.Writer) int {
	if code := runCheck(path, stdout, stderr); code != 0 {
		return code
	}
	cfg, _, err := config.Load(path)
	if err != nil { // it loaded a moment ago
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), onlineTotalTimeout)
	defer cancel()
	lines, failed := onlineChecks(ctx, cfg, onlineCheckTimeout)
	secrets := configSecrets(cfg)
	fmt.Fprintln(stdout, "online checks:")
	for _, l := range lines {
		// Every message was built to hold no secret; this is the belt to
		// those braces.
		fmt.Fprintln(stdout, secrets.Redact(l))
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%s: %d of %d online check(s) failed\n", path, failed, len(lines))
		return 1
	}
	fmt.Fprintf(stdout, "%s: every online check passed\n", path)
	return 0
}

// onlineChecks runs the check of every input and output concurrently and
// returns their lines, in the configuration's order, and how many failed.
func onlineChecks(ctx context.Context, cfg *config.Config, timeout time.Duration) ([]string, int) {
	lines := make([]string, len(cfg.Inputs)+len(cfg.Outputs))
	ok := make([]bool, len(lines))
	var wg sync.WaitGroup
	for i, ic := range cfg.Inputs {
		head := fmt.Sprintf("  input %s (%s): ", ic.Name, ic.Protocol)
		if ic.Protocol != config.ProtocolDarktraceAPI {
			lines[i], ok[i] = head+"not checked: it listens, there is nothing to reach", true
			continue
		}
		wg.Go(func() {
			text, pass := describeProbe(relay.ProbeInput(ctx, ic, timeout))
			lines[i], ok[i] = head+text, pass
		})
	}
	for j, oc := range cfg.Outputs {
		i := len(cfg.Inputs) + j
		head := fmt.Sprintf("  output %s (%s): ", oc.Name, oc.Type)
		wg.Go(func() {
			what, err := relay.ProbeOutput(ctx, oc, timeout)
			if err != nil {
				lines[i] = head + "FAIL: " + describeOutputError(err)
				return
			}
			text := "ok: " + what
			if oc.Type == "sekoia-http" {
				text += " (the intake key is not tested: Sekoia's intake has no documented request that checks it without creating an event)"
			}
			lines[i], ok[i] = head+text, true
		})
	}
	wg.Wait()
	failed := 0
	for _, pass := range ok {
		if !pass {
			failed++
		}
	}
	return lines, failed
}

// describeProbe says what a darktrace-api input's probe found, and
// whether it passed.
func describeProbe(res poller.ProbeResult) (string, bool) {
	skew := ""
	if res.HaveSkew {
		skew = "clock skew " + describeSkew(res.Skew)
	}
	if res.Err == nil {
		text := fmt.Sprintf("ok: %s answered (%d event(s) in the last %v)", strings.Join(res.Answered, " and "), res.Events, poller.ProbeWindow)
		if skew != "" {
			text += "; " + skew
		}
		return text, true
	}
	on := ""
	if res.Path != "" {
		on = " on " + res.Path
	}
	var kind string
	switch err := res.Err; {
	case errors.Is(err, poller.ErrSignature):
		kind = "signature error"
	case errors.Is(err, poller.ErrDate):
		kind = "date error"
		if skew != "" {
			kind += " (" + skew + ")"
		}
	case errors.Is(err, poller.ErrLogin):
		kind = "permission redirect to the login page (the token lacks the permission for this endpoint, or url is not the API)"
	case errors.Is(err, poller.ErrForbidden):
		kind = "permission denied"
	case errors.Is(err, poller.ErrUntrusted):
		kind = "TLS trust error"
	case isTLSError(err):
		kind = "TLS error"
	case errors.Is(err, poller.ErrUnauthorized):
		kind = "unauthorized"
	case errors.Is(err, poller.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
	default:
		kind = "error"
	}
	return fmt.Sprintf("FAIL: %s%s: %v", kind, on, res.Err), false
}

// describeSkew says how far Darktrace's clock is from this host's.
func describeSkew(d time.Duration) string {
	r := d.Round(time.Second)
	switch {
	case r == 0:
		return "under 1s"
	case r > 0:
		return fmt.Sprintf("%v: this host's clock is behind Darktrace's", r)
	}
	return fmt.Sprintf("%v: this host's clock is ahead of Darktrace's", -r)
}

// describeOutputError names a TLS trust failure and its fix.
func describeOutputError(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return "TLS trust error: the intake's certificate is not signed by a trusted CA; set the output's ca_file to the CA (PEM) that signed it: " + err.Error()
	case errors.As(err, &host):
		return "TLS name error: the intake's certificate is not for this name; fix address/url, or set server_name: " + err.Error()
	case isTLSError(err):
		return "TLS error: " + err.Error()
	}
	return err.Error()
}

func isTLSError(err error) bool {
	var (
		ci x509.CertificateInvalidError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
	)
	return errors.As(err, &ci) || errors.As(err, &ua) || errors.As(err, &hn) || strings.Contains(err.Error(), "tls:")
}

// configSecrets is every secret of cfg: API tokens, intake keys, header
// values and what URLs carry.
func configSecrets(cfg *config.Config) *secret.Set {
	var s secret.Set
	for _, ic := range cfg.Inputs {
		s.Add(ic.PublicToken)
		s.Add(ic.PrivateToken)
		s.AddURL(ic.URL)
	}
	for _, oc := range cfg.Outputs {
		s.Add(oc.IntakeKey)
		s.AddURL(oc.URL)
		for _, v := range oc.Headers {
			s.Add(v)
		}
	}
	return &s
}
