package dataplane

import (
	"strings"
	"testing"
)

// TestHeadScan feeds header blocks to the bare-LF scanner in pieces, as
// reads may split them anywhere.
func TestHeadScan(t *testing.T) {
	tests := []struct {
		name   string
		reads  []string
		bad    int // index in the last read, or -1
		stayOn bool
	}{
		{"sound block", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, -1, false},
		{"sound block, body with bare LFs after it", []string{"POST / HTTP/1.1\r\nHost: a\r\n\r\nline\n\nline\n"}, -1, false},
		{"CRLF split across reads", []string{"GET / HTTP/1.1\r", "\nHost: a\r", "\n\r", "\n"}, -1, false},
		{"unfinished block", []string{"GET / HTTP/1.1\r\nHost: a"}, -1, true},
		{"bare LF ending the request line", []string{"GET / HTTP/1.1\nHost: a\r\n\r\n"}, 14, false},
		{"bare LF ending the block", []string{"GET / HTTP/1.1\r\nHost: a\r\n\n"}, 25, false},
		{"bare LF at the start of a read", []string{"GET / HTTP/1.1\r\nHost: a", "\n\r\n"}, 0, false},
		{"LF LF", []string{"GET / HTTP/1.1\r\n\n"}, 16, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := headScan{on: true}
			got := -1
			for i, r := range tt.reads {
				got = s.scan([]byte(r))
				if got >= 0 && i < len(tt.reads)-1 {
					t.Fatalf("bare LF found in read %d of %q", i, tt.reads)
				}
			}
			if got != tt.bad || s.on != tt.stayOn || s.bad != (tt.bad >= 0) {
				t.Errorf("scan of %q = %d (on %v, bad %v), want %d (on %v)", strings.Join(tt.reads, "|"), got, s.on, s.bad, tt.bad, tt.stayOn)
			}
		})
	}
}
