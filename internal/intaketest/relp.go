package intaketest

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/dtrelay/dtrelay/internal/relp"
)

// RELPIntake is a mock RELP intake (Sekoia's RELP intake, rsyslog's
// imrelp) on 127.0.0.1: a SyslogIntake whose connections speak RELP as a
// librelp server does. It answers "open" with relp_version=0 and
// commands=syslog, each "syslog" command with "rsp 200 OK" once the
// message is recorded (checked like SyslogIntake's messages), "close" with
// an empty rsp and a serverclose hint. A transaction number out of
// sequence (librelp requires 1, 2, 3...), a command before open, or a
// malformed frame is a problem, and ends the session.
//
// It can be told to misbehave: refuse messages with a status, stop
// answering, break the session after N messages (having recorded the next
// one or not), send serverclose, or refuse the open.
type RELPIntake struct {
	*SyslogIntake
}

// relpState is what a RELP mock has been told to do; guarded by the
// intake's mu.
type relpState struct {
	refuse     int // answer this many messages with refuseCode
	refuseCode int
	silent     bool // read messages, answer none
	breakAfter int  // > 0: answer this many more, then break the session
	breakTake  bool // the message that breaks it is recorded (taken, unanswered)
	openStatus int  // the status answering open; 0: 200
	noSyslog   bool // offer no syslog command
	opens      int
	txnrs      []int // the transaction numbers of the syslog commands, in order
}

// NewRELP starts a RELP mock intake configured by opts. With Discard it
// answers every message 200 and keeps nothing but the count of bytes
// (Bytes), allocating nothing per message: a sink for benchmarks and
// allocation tests.
func NewRELP(tb testing.TB, opts SyslogOptions) *RELPIntake {
	tb.Helper()
	s := &SyslogIntake{recorder: newRecorder(tb, "relp"), tb: tb, opts: opts, live: map[*mockConn]struct{}{},
		relp: &relpState{}}
	s.setupTLS()
	s.addr = "127.0.0.1:0"
	if err := s.listen(); err != nil {
		tb.Fatalf("cannot listen: %v", err)
	}
	s.addr = s.ln.Addr().String()
	tb.Cleanup(s.Stop)
	return &RELPIntake{s}
}

// Refuse answers the next n messages with status code (not recorded).
func (r *RELPIntake) Refuse(n, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.relp.refuse, r.relp.refuseCode = n, code
}

// Silent stops (true) or resumes answering messages; they are read and
// not recorded meanwhile.
func (r *RELPIntake) Silent(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.relp.silent = on
}

// BreakAfter answers n more messages, then closes the session abruptly
// on the next one, which is recorded first when take is true (the intake
// took it and died before answering: the sender's resend duplicates it).
func (r *RELPIntake) BreakAfter(n int, take bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.relp.breakAfter, r.relp.breakTake = n+1, take
}

// OpenStatus makes the mock answer open with status (200 restores it);
// noSyslog leaves the syslog command out of its offers.
func (r *RELPIntake) OpenStatus(status int, noSyslog bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.relp.openStatus, r.relp.noSyslog = status, noSyslog
}

// Opens returns the number of sessions opened so far.
func (r *RELPIntake) Opens() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.relp.opens
}

// Txnrs returns the transaction numbers of the syslog commands received.
func (r *RELPIntake) Txnrs() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.relp.txnrs...)
}

// Serverclose sends the serverclose hint on every live session and closes
// it, as a librelp server shutting down does.
func (r *RELPIntake) Serverclose() {
	r.mu.Lock()
	conns := make([]*mockConn, 0, len(r.live))
	for c := range r.live {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.wmu.Lock()
		_, _ = c.Write([]byte("0 serverclose 0\n"))
		c.wmu.Unlock()
		c.close()
	}
}

var ok200 = []byte("200 OK")

// serveRELP runs one RELP session on c.
func (s *SyslogIntake) serveRELP(c *mockConn) {
	r := relp.NewReader(c, maxFrame)
	var (
		f      relp.Frame
		out    []byte
		expect = 1
		open   bool
	)
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		c.wmu.Lock()
		_, err := c.Write(out)
		c.wmu.Unlock()
		out = out[:0]
		return err == nil
	}
	for {
		if err := r.Read(&f); err != nil {
			if errors.Is(err, relp.ErrFrame) {
				s.problem("relp: %v", err)
			}
			return
		}
		if f.Txnr != expect {
			s.problem("relp: transaction %d, want %d", f.Txnr, expect)
			return
		}
		expect = relp.NextTxnr(expect)
		switch {
		case f.Is(relp.CmdOpen):
			if open {
				s.problem("relp: open on an open session")
				return
			}
			offers := relp.Offers(f.Data)
			if _, ok := offers.Get("relp_version"); !ok || !offers.Has("commands", relp.CmdSyslog) {
				s.problem("relp: open without relp_version or commands=syslog: %q", f.Data)
			}
			s.mu.Lock()
			st := s.relp
			status, noSyslog := st.openStatus, st.noSyslog
			st.opens++
			s.mu.Unlock()
			if status == 0 || status == 200 {
				body := "200 OK\nrelp_version=0\nrelp_software=intaketest"
				if !noSyslog {
					body += "\ncommands=syslog"
				}
				out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, []byte(body))
				open = true
			} else {
				out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, []byte(strconv.Itoa(status)+" refused"))
			}
		case !open:
			s.problem("relp: %q before open", f.Command)
			return
		case f.Is(relp.CmdSyslog) && s.opts.Discard:
			s.bytes.Add(int64(len(f.Data)))
			out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, ok200)
		case f.Is(relp.CmdSyslog):
			msg := append([]byte(nil), f.Data...)
			s.mu.Lock()
			st := s.relp
			st.txnrs = append(st.txnrs, f.Txnr)
			status, silent := 200, st.silent
			breaking, take := false, st.breakTake
			if st.breakAfter > 0 {
				st.breakAfter--
				breaking = st.breakAfter == 0
			}
			if st.refuse > 0 && !breaking {
				st.refuse--
				status = st.refuseCode
			}
			s.mu.Unlock()
			if breaking {
				flush()
				if take {
					s.record(msg)
				}
				return // closed abruptly by serve's deferred close
			}
			if silent {
				continue
			}
			if status == 200 {
				s.record(msg)
				out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, ok200)
			} else {
				out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, fmt.Appendf(nil, "%d refused by the mock", status))
			}
		case f.Is(relp.CmdClose):
			out = relp.AppendFrame(out, f.Txnr, relp.CmdRsp, nil)
			out = append(out, "0 serverclose 0\n"...)
			flush()
			return
		default:
			s.problem("relp: unknown command %q", f.Command)
			return
		}
		if r.Buffered() == 0 && !flush() {
			return
		}
	}
}
