package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// CopyRelay is the reference relay of DESIGN.md §7: a trivial Go relay that
// takes syslog frames from TCP and writes each frame's payload (from its
// first '{') in Sekoia form, octet-counted, to the sink, one output
// connection per input connection, one write per read. It validates nothing,
// so it bounds what a relay can do on the machine.
type CopyRelay struct {
	Out       string      // sink address
	TLS       *tls.Config // sink TLS client config, nil for plain TCP
	IntakeKey string
	// DropEvery > 0 drops every DropEvery-th frame of each connection: a
	// deliberately lossy relay, to check that loss is caught.
	DropEvery int
	Log       zerolog.Logger
}

// Serve accepts connections on ln until it is closed, relaying each.
func (r *CopyRelay) Serve(ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := r.relay(c); err != nil {
				r.Log.Warn().Err(err).Msg("copy relay connection failed")
			}
		}()
	}
}

func (r *CopyRelay) relay(in net.Conn) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	var out net.Conn
	var err error
	if r.TLS != nil {
		out, err = (&tls.Dialer{NetDialer: &d, Config: r.TLS}).DialContext(context.Background(), "tcp", r.Out)
	} else {
		out, err = d.Dial("tcp", r.Out)
	}
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", r.Out, err)
	}
	defer out.Close()
	prefix := []byte("<165>1 - " + Host + " darktrace - LOG [SEKOIA@53288 intake_key=\"" + r.IntakeKey + "\"] ")
	buf := make([]byte, 256<<10)
	var wbuf []byte
	n, frames := 0, 0
	emit := func(f []byte) {
		frames++
		if r.DropEvery > 0 && frames%r.DropEvery == 0 {
			return
		}
		if i := indexByte(f, '{'); i >= 0 {
			f = f[i:]
		}
		wbuf = strconv.AppendInt(wbuf, int64(len(prefix)+len(f)), 10)
		wbuf = append(wbuf, ' ')
		wbuf = append(wbuf, prefix...)
		wbuf = append(wbuf, f...)
	}
	for {
		m, rerr := in.Read(buf[n:])
		n += m
		wbuf = wbuf[:0]
		used, ferr := SplitFrames(buf[:n], MaxFrame, emit)
		n = copy(buf, buf[used:n])
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		if len(wbuf) > 0 {
			if _, err := out.Write(wbuf); err != nil {
				return fmt.Errorf("cannot write to %s: %w", r.Out, err)
			}
		}
		if ferr != nil {
			return ferr
		}
		if rerr != nil {
			return nil
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// CopyRelayExec runs CopyRelay as its own process (`dtbench copy-relay`), so
// its CPU and RSS are measured like a real relay's. It supports TCP input and
// the syslog outputs.
type CopyRelayExec struct {
	Bin       string // the dtbench binary
	DropEvery int    // > 0: drop every DropEvery-th alert per connection
}

// Name implements Relay.
func (r *CopyRelayExec) Name() string { return "copy" }

// Available implements Relay.
func (r *CopyRelayExec) Available() error {
	if r.Bin == "" {
		return fmt.Errorf("%w: no dtbench binary to run the copy relay", ErrRelayMissing)
	}
	_, err := lookBin(r.Bin)
	return err
}

// Supports implements Relay.
func (r *CopyRelayExec) Supports(spec *RelaySpec) error {
	if spec.Input != "tcp" || (spec.Output != OutputSyslog && spec.Output != OutputTLSSyslog) {
		return fmt.Errorf("%w: the copy relay does TCP in, TCP or TLS syslog out only", ErrUnsupported)
	}
	return nil
}

// Start implements Relay.
func (r *CopyRelayExec) Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error) {
	args := []string{"copy-relay", "--listen", spec.InputAddr, "--to", spec.SinkAddr, "--intake-key", spec.IntakeKey}
	if spec.Output == OutputTLSSyslog {
		args = append(args, "--ca", spec.Cert.CAFile())
	}
	if r.DropEvery > 0 {
		args = append(args, "--drop-every", strconv.Itoa(r.DropEvery))
	}
	return StartProcess(ctx, r.Bin, args, filepath.Join(spec.Dir, "copy.log"), "tcp", spec.InputAddr)
}
