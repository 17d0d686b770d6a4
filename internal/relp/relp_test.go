package relp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// frames reads every frame of in, through r, as "TXNR CMD DATA" strings,
// and the error that ended them.
func frames(r io.Reader, maxData int) ([]string, error) {
	rd := NewReader(r, maxData)
	var out []string
	for {
		var f Frame
		if err := rd.Read(&f); err != nil {
			return out, err
		}
		out = append(out, fmt.Sprintf("%d %s %q", f.Txnr, f.Command, f.Data))
	}
}

func TestReadFrames(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		err      error // nil: io.EOF at the end
	}{
		{"rsp", "2 rsp 6 200 OK\n", []string{`2 rsp "200 OK"`}, nil},
		{"open rsp", "1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n",
			[]string{`1 rsp "200 OK\nrelp_version=0\ncommands=syslog"`}, nil},
		{"no data", "0 serverclose 0\n", []string{`0 serverclose ""`}, nil},
		{"two", "3 rsp 6 200 OK\n4 rsp 9 500 error\n", []string{`3 rsp "200 OK"`, `4 rsp "500 error"`}, nil},
		{"data holds LF and digits", "5 syslog 5 a\n1 2\n", []string{`5 syslog "a\n1 2"`}, nil},
		{"max txnr", "999999999 rsp 6 200 OK\n", []string{`999999999 rsp "200 OK"`}, nil},
		{"empty", "", nil, nil},
		{"cut in header", "2 rsp 6", nil, io.ErrUnexpectedEOF},
		{"cut in data", "2 rsp 6 200", nil, io.ErrUnexpectedEOF},
		{"cut before trailer", "2 rsp 6 200 OK", nil, io.ErrUnexpectedEOF},
		{"ten-digit txnr", "1234567890 rsp 6 200 OK\n", nil, ErrFrame},
		{"letter in txnr", "2x rsp 6 200 OK\n", nil, ErrFrame},
		{"no txnr", " rsp 6 200 OK\n", nil, ErrFrame},
		{"empty command", "2  6 200 OK\n", nil, ErrFrame},
		{"digit in command", "2 rsp1 6 200 OK\n", nil, ErrFrame},
		{"long command", "2 " + strings.Repeat("a", 33) + " 0\n", nil, ErrFrame},
		{"32-letter command", "2 " + strings.Repeat("a", 32) + " 0\n", []string{"2 " + strings.Repeat("a", 32) + ` ""`}, nil},
		{"no length", "2 rsp \n", nil, ErrFrame},
		{"ten-digit length", "2 rsp 1234567890 x\n", nil, ErrFrame},
		{"too long", "2 rsp 65 " + strings.Repeat("x", 65) + "\n", nil, ErrFrame},
		{"length then LF", "2 rsp 6\n200 OK\n", nil, ErrFrame},
		{"zero length then SP", "2 rsp 0 \n", nil, ErrFrame},
		{"short data", "2 rsp 7 200 OK\n", nil, io.ErrUnexpectedEOF},
		{"long data", "2 rsp 5 200 OK\n", nil, ErrFrame},
		{"no trailer", "2 rsp 6 200 OKx", nil, ErrFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := frames(strings.NewReader(tc.in), 64)
			want := tc.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v, want %v", err, want)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("frames %q, want %q", got, tc.want)
			}
		})
	}
}

// A frame arriving a byte at a time reads as it does whole.
func TestReadOneByteAtATime(t *testing.T) {
	in := "1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n2 rsp 6 200 OK\n0 serverclose 0\n"
	whole, werr := frames(strings.NewReader(in), 1024)
	bytewise, berr := frames(iotest.OneByteReader(strings.NewReader(in)), 1024)
	if werr != io.EOF || berr != io.EOF || strings.Join(whole, "|") != strings.Join(bytewise, "|") || len(whole) != 3 {
		t.Fatalf("whole %q (%v), byte-wise %q (%v)", whole, werr, bytewise, berr)
	}
}

func TestAppendFrameReadsBack(t *testing.T) {
	var b []byte
	b = AppendFrame(b, 1, CmdOpen, OpenOffers("dtrelay,test,https://example.invalid"))
	b = AppendSyslog(b, 2, []byte("12 <165>1 - x y"))
	b = AppendFrame(b, 3, CmdClose, nil)
	got, err := frames(bytes.NewReader(b), 1024)
	want := []string{
		`1 open "relp_version=0\nrelp_software=dtrelay,test,https://example.invalid\ncommands=syslog"`,
		`2 syslog "<165>1 - x y"`,
		`3 close ""`,
	}
	if err != io.EOF || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

func TestNextTxnrWraps(t *testing.T) {
	if NextTxnr(1) != 2 || NextTxnr(MaxTxnr-1) != MaxTxnr || NextTxnr(MaxTxnr) != 1 {
		t.Fatal("NextTxnr does not count 1..MaxTxnr and wrap to 1")
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		in         string
		code       int
		text, body string
		bad        bool
	}{
		{"200 OK", 200, "OK", "", false},
		{"200", 200, "", "", false},
		{"200 OK\nrelp_version=0\ncommands=syslog", 200, "OK", "relp_version=0\ncommands=syslog", false},
		{"200\nrelp_version=0", 200, "", "relp_version=0", false},
		{"500 command disabled", 500, "command disabled", "", false},
		{"", 0, "", "", true},
		{"20", 0, "", "", true},
		{"2000 OK", 0, "", "", true},
		{"OK 200", 0, "", "", true},
	} {
		rsp, err := ParseResponse([]byte(tc.in))
		if (err != nil) != tc.bad {
			t.Fatalf("%q: error %v", tc.in, err)
		}
		if tc.bad {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("%q: error %v does not wrap ErrFrame", tc.in, err)
			}
			continue
		}
		if rsp.Code != tc.code || string(rsp.Text) != tc.text || string(rsp.Body) != tc.body || rsp.OK() != (tc.code == 200) {
			t.Fatalf("%q: %d %q %q", tc.in, rsp.Code, rsp.Text, rsp.Body)
		}
	}
}

func TestOffers(t *testing.T) {
	o := Offers("relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog,eventlog\nflag")
	if v, ok := o.Get("relp_version"); !ok || string(v) != "0" {
		t.Fatalf("relp_version = %q, %v", v, ok)
	}
	if !o.Has("commands", "syslog") || !o.Has("commands", "eventlog") || o.Has("commands", "sys") {
		t.Fatal("commands values misread")
	}
	if _, ok := o.Get("flag"); !ok {
		t.Fatal("an offer without a value is not found")
	}
	if _, ok := o.Get("missing"); ok {
		t.Fatal("a missing offer is found")
	}
	if Offers("relp_version=0").Has("commands", "syslog") {
		t.Fatal("commands found where there is none")
	}
}

// Reading responses allocates nothing once the buffers have grown: the
// sender reads one per message.
func TestReadAllocatesNothing(t *testing.T) {
	in := bytes.Repeat([]byte("7 rsp 6 200 OK\n"), 2000)
	br := bytes.NewReader(in)
	rd := NewReader(br, 1024)
	var f Frame
	var err error
	n := alloctest.PerRun(1000, func() {
		if err = rd.Read(&f); err == nil {
			_, err = ParseResponse(f.Data)
		}
	})
	if err != nil || n != 0 {
		t.Fatalf("%v allocations per response read (error %v)", n, err)
	}
}

// twoParts returns a reader that yields a, then b, in separate reads.
func twoParts(a, b []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(a), bytes.NewReader(b))
}

// FuzzReader: any byte sequence, fed whole, in two parts split anywhere,
// or a byte at a time, reads as the same frames and ends with the same
// kind of error; nothing panics; a frame's data is never longer than the
// limit.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"2 rsp 6 200 OK\n",
		"1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n",
		"0 serverclose 0\n3 rsp 9 500 error\n",
		"2 rsp 6 200", "1234567890 rsp 0\n", "2 rsp 9999 x\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		const limit = 256
		at := int(cut) % (len(in) + 1)
		whole, werr := frames(bytes.NewReader(in), limit)
		split, serr := frames(twoParts(in[:at], in[at:]), limit)
		bytewise, berr := frames(iotest.OneByteReader(bytes.NewReader(in)), limit)
		if strings.Join(whole, "|") != strings.Join(split, "|") || strings.Join(whole, "|") != strings.Join(bytewise, "|") {
			t.Fatalf("whole %q, split at %d %q, byte-wise %q", whole, at, split, bytewise)
		}
		if kind(werr) != kind(serr) || kind(werr) != kind(berr) {
			t.Fatalf("errors differ: whole %v, split %v, byte-wise %v", werr, serr, berr)
		}
		for _, fr := range whole {
			if len(fr) > limit*4+64 { // %q at most quadruples
				t.Fatalf("frame longer than the limit: %d", len(fr))
			}
		}
		for i := range whole {
			rsp, err := ParseResponse([]byte(whole[i]))
			if err == nil && (rsp.Code < 0 || rsp.Code > 999) {
				t.Fatalf("code %d", rsp.Code)
			}
		}
	})
}

func kind(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected"
	case errors.Is(err, ErrFrame):
		return "frame"
	}
	return fmt.Sprint(err)
}
