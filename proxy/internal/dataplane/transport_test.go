package dataplane

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// readStream decodes a body the way the server would read it from a
// bodyStream, and reports how the connection was released.
func readStream(t *testing.T, raw string, cl int) (body string, trailer string, err error, reused bool) {
	t.Helper()
	var resp fasthttp.Response
	s := &bodyStream{}
	s.init(&fasthttp.HostClient{}, bufio.NewReaderSize(strings.NewReader(raw), 64), &resp, cl, false)
	released := false
	s.release = func(closeConn bool) { released, reused = true, !closeConn }
	// Small reads, as a slow client would make them.
	var out strings.Builder
	buf := make([]byte, 7)
	for {
		n, e := s.Read(buf)
		out.Write(buf[:n])
		if e == io.EOF {
			break
		}
		if e != nil {
			err = e
			break
		}
	}
	_ = s.CloseWithError(nil)
	_ = s.CloseWithError(nil) // a second close is harmless
	if !released {
		t.Fatal("the connection was not released")
	}
	return out.String(), string(resp.Header.Peek("X-Sum")), err, reused
}

func TestBodyStream(t *testing.T) {
	tests := []struct {
		name, raw string
		cl        int
		body      string
		trailer   string
		bad       bool
		reused    bool
	}{
		{"fixed length", "hello world", 11, "hello world", "", false, true},
		{"fixed length, short", "hello", 11, "hello", "", true, false},
		{"chunked", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", -1, "hello world", "", false, true},
		{"chunked with extension", "5;name=val\r\nhello\r\n0\r\n\r\n", -1, "hello", "", false, true},
		{"chunked upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", -1, "0123456789", "", false, true},
		{"chunked bare LF", "5\nhello\n0\r\n\r\n", -1, "hello", "", false, true},
		{"chunked with trailer", "5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n", -1, "hello", "42", false, true},
		{"chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n", -1, "", "", true, false},
		{"empty chunk size", "\r\nhello\r\n0\r\n\r\n", -1, "", "", true, false},
		{"chunk longer than its size", "2\r\nhello\r\n0\r\n\r\n", -1, "he", "", true, false},
		{"chunked, cut off", "5\r\nhel", -1, "hel", "", true, false},
		{"chunk size overflow", "1000000000000000000\r\nx\r\n", -1, "", "", true, false},
		{"chunk size line too long", strings.Repeat("0", 100) + "1\r\nx\r\n0\r\n\r\n", -1, "", "", true, false},
		{"until the connection ends", "all of it", -2, "all of it", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, trailer, err, reused := readStream(t, tt.raw, tt.cl)
			if body != tt.body || trailer != tt.trailer || (err != nil) != tt.bad || reused != tt.reused {
				t.Fatalf("body %q trailer %q err %v reused %v", body, trailer, err, reused)
			}
			if tt.bad && tt.cl == -1 && !strings.Contains(tt.name, "cut off") && !strings.Contains(tt.name, "longer") && !errors.Is(err, errBadChunk) {
				t.Fatalf("error %v is not errBadChunk", err)
			}
		})
	}
}

// FuzzBodyStream feeds arbitrary chunked bodies to the decoder: it must not
// panic, and what it accepts must be what fasthttp accepts.
func FuzzBodyStream(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "0\r\n\r\n", "5;x\r\nhello\r\n0\r\nA: b\r\n\r\n", "zz\r\n", "1\r\nab\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var resp fasthttp.Response
		s := &bodyStream{}
		s.init(&fasthttp.HostClient{}, bufio.NewReader(strings.NewReader(raw)), &resp, -1, false)
		s.release = func(bool) {}
		got, err := io.ReadAll(s)
		_ = s.CloseWithError(nil)
		if err != nil {
			return
		}
		// fasthttp's own reader must agree on an accepted body.
		var ref fasthttp.Response
		full := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + raw
		if err := ref.Read(bufio.NewReader(strings.NewReader(full))); err != nil {
			return // fasthttp is stricter on some inputs; ours must not be looser in content
		}
		if string(ref.Body()) != string(got) {
			t.Fatalf("decoded %q, fasthttp decodes %q", got, ref.Body())
		}
	})
}
