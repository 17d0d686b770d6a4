package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
)

// notifier tells systemd (a Type=notify unit, deploy/dtrelay.service) how
// the relay is doing: READY=1 once every listener accepts, STOPPING=1 when
// a stop begins and, when the unit sets WatchdogSec, WATCHDOG=1 at half
// that interval for as long as the relay answers its liveness check.
// Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
// Its methods are called from runRelay's goroutine only.
type notifier struct {
	log          zerolog.Logger
	stopWatchdog context.CancelFunc
	watchdogDone chan struct{}
}

// send writes one state to the notify socket and reports whether it was
// sent; a failure is logged, never fatal: a relay that runs but cannot
// tell systemd is better than none.
func (n *notifier) send(state string) bool {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		n.log.Warn().Err(err).Str("state", state).Msg("cannot notify systemd")
	}
	return sent
}

// ready sends READY=1 and, if systemd asked for a watchdog, starts pinging
// it while alive answers. alive must return within its context.
func (n *notifier) ready(alive func(context.Context) error) {
	if !n.send(daemon.SdNotifyReady) {
		return // not under systemd (or its socket is unusable: logged)
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn().Err(err).Msg("cannot read the systemd watchdog interval; not pinging it")
		return
	}
	if interval <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopWatchdog, n.watchdogDone = cancel, make(chan struct{})
	n.log.Info().Dur("interval", interval).Msg("pinging the systemd watchdog")
	go func() {
		defer close(n.watchdogDone)
		watchdog(ctx, interval/2, alive, func() { n.send(daemon.SdNotifyWatchdog) }, n.log)
	}()
}

// stopping stops the watchdog pings (systemd does not watch a stopping
// unit; TimeoutStopSec bounds the drain) and sends STOPPING=1.
func (n *notifier) stopping() {
	if n.stopWatchdog != nil {
		n.stopWatchdog()
		<-n.watchdogDone
	}
	n.send(daemon.SdNotifyStopping)
}

// watchdog calls ping every period while alive answers within half a
// period, until ctx ends. A failed check skips the ping, so a relay that
// stays wedged for the unit's WatchdogSec is killed and restarted by
// systemd; the failure is logged.
func watchdog(ctx context.Context, period time.Duration, alive func(context.Context) error, ping func(), log zerolog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, period/2)
		err := alive(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error().Err(err).Msg("liveness check failed: not pinging the systemd watchdog")
		default:
			ping()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// httpLiveness returns the watchdog's liveness check: a GET of the
// relay's own /healthz on its metrics listener addr, which must answer 200.
// With no metrics listener (addr nil) the check only shows that the
// process still schedules goroutines.
func httpLiveness(addr net.Addr) func(context.Context) error {
	if addr == nil {
		return func(context.Context) error { return nil }
	}
	url := "http://" + loopbackFor(addr) + "/healthz"
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("cannot get /healthz: %w", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz answered %s", resp.Status)
		}
		return nil
	}
}

// loopbackFor is addr as a host:port to dial from this host: an
// unspecified listen address (0.0.0.0, ::) is reached on loopback.
func loopbackFor(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}
