package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// TestChangeProblemByType: the admin API maps a change's error to a status
// by its type, whatever its text says, and keeps paths out of the detail.
func TestChangeProblemByType(t *testing.T) {
	path := "/var/lib/strangler/proxy/.state.json.123"
	pathErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "write", Path: path, Err: errno}
	}
	_, parseErr := routes.Parse([]byte("modules: [ {name: a"))
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"unreadable table", parseErr, http.StatusBadRequest},
		{"invalid table", &routes.Error{Problems: []string{"modules: the table has no routes"}}, http.StatusUnprocessableEntity},
		{"invalid change", &changeError{"weight", "must be 0 to 100"}, http.StatusUnprocessableEntity},
		{"unknown module", errModuleNotFound, http.StatusNotFound},
		{"file-managed", errFileManaged, http.StatusConflict},
		{"stale version", fmt.Errorf("replace: %w", errVersion), http.StatusPreconditionFailed},
		{"disk full", &persistError{pathErr(syscall.ENOSPC)}, http.StatusInsufficientStorage},
		{"quota", &persistError{pathErr(syscall.EDQUOT)}, http.StatusInsufficientStorage},
		{"read-only state dir", &persistError{pathErr(syscall.EROFS)}, http.StatusServiceUnavailable},
		{"disk full wrapped", fmt.Errorf("routes file: %w", &persistError{pathErr(syscall.ENOSPC)}), http.StatusInsufficientStorage},
		// Text that once chose a status by itself: now only types do.
		{"text says route table", errors.New("the route table is not valid"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changeProblem(tc.err)
			var p *httpx.Problem
			if !errors.As(got, &p) {
				if tc.status != 0 {
					t.Fatalf("%v: not a problem", got)
				}
				return
			}
			if p.Status != tc.status {
				t.Fatalf("%v: status %d, want %d", tc.err, p.Status, tc.status)
			}
			if strings.Contains(p.Detail, "/var/lib") || strings.Contains(p.Title, "/var/lib") {
				t.Fatalf("path in the problem: %+v", p)
			}
		})
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r    io.ReaderAt
	read int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += int64(n)
	return n, err
}

// TestAuditPages: a page of the audit log reads a bounded part of the file
// from its end, however large the file, and the pages join up into the
// whole log, newest first, with a module filter too.
func TestAuditPages(t *testing.T) {
	s, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var all []api.AuditEntry
	f, err := os.Create(filepath.Join(s.dir, auditFile))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < n; i++ {
		e := api.AuditEntry{Time: time.Unix(int64(i), 0).UTC(), Actor: "tester", Action: "flip", Module: fmt.Sprintf("m%d", i%7), Version: int64(i + 1),
			Detail: strings.Repeat("x", i%300)}
		if i == n/2 {
			// One entry far longer than a read chunk.
			e.Detail = strings.Repeat("y", 200<<10)
		}
		b, _ := json.Marshal(e)
		w.Write(append(b, '\n'))
		all = append(all, e)
	}
	w.WriteString(`{"time":"torn`) // a torn last line after a crash
	w.Flush()
	f.Close()
	fi, _ := os.Stat(filepath.Join(s.dir, auditFile))
	t.Logf("audit file: %d entries, %d bytes", n, fi.Size())

	for _, tc := range []struct {
		module string
		limit  int
	}{
		{"", 50},
		{"", 997},
		{"m3", 40},
		{"nope", 100},
	} {
		t.Run(fmt.Sprintf("module %q limit %d", tc.module, tc.limit), func(t *testing.T) {
			var want []api.AuditEntry
			for i := len(all) - 1; i >= 0; i-- {
				if tc.module == "" || all[i].Module == tc.module {
					want = append(want, all[i])
				}
			}
			var got []api.AuditEntry
			before, pages, maxRead := int64(0), 0, int64(0)
			for {
				cr := &countingReaderAt{r: mustOpen(t, filepath.Join(s.dir, auditFile))}
				page, next, err := readAuditPage(cr, fi.Size(), tc.module, tc.limit, before)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > tc.limit {
					t.Fatalf("page of %d, limit %d", len(page), tc.limit)
				}
				maxRead = max(maxRead, cr.read)
				got = append(got, page...)
				pages++
				if next == 0 {
					break
				}
				if before != 0 && next >= before {
					t.Fatalf("no progress: cursor %d after %d", next, before)
				}
				before = next
			}
			if len(got) != len(want) {
				t.Fatalf("%d entries over %d pages, want %d", len(got), pages, len(want))
			}
			for i := range got {
				if got[i].Version != want[i].Version {
					t.Fatalf("entry %d: version %d, want %d", i, got[i].Version, want[i].Version)
				}
			}
			// A page reads its budget, a chunk and the longest line at most.
			if bound := int64(auditScanBudget + auditChunk + 210<<10); maxRead > bound {
				t.Fatalf("a page read %d bytes, bound %d", maxRead, bound)
			}
			t.Logf("%d pages, at most %d bytes read by one", pages, maxRead)
		})
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestChaosAuditOnFullDisk: an audit entry that the disk has room for only
// in part leaves no torn line behind, so the entries written once there is
// room again read back whole.
func TestChaosAuditOnFullDisk(t *testing.T) {
	tried := "an audit entry larger than the room left on a 256 KiB tmpfs, then more entries once there is room"
	dir := MountTmpfs(t, tried, "256k")
	s, err := openStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(v int64, detail string) api.AuditEntry {
		return api.AuditEntry{Time: time.Unix(v, 0).UTC(), Actor: "tester", Action: "flip", Module: "orders", Version: v, Detail: detail}
	}
	if err := s.appendAudit(entry(1, "")); err != nil {
		t.Fatal(err)
	}
	filler := FillDisk(t, dir, 8192)
	bigErr := s.appendAudit(entry(2, strings.Repeat("x", 64<<10)))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.appendAudit(entry(3, "")); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.readAudit("", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, e := range got {
		versions = append(versions, e.Version)
	}
	raw, _ := os.ReadFile(filepath.Join(s.dir, auditFile))
	ok := bigErr != nil && fmt.Sprint(versions) == "[3 1]" && bytes.Count(raw, []byte("\n")) == 2
	chaostest.Report(t, ok, tried, "the big entry refused and gone, entries 3 and 1 read back, two whole lines",
		fmt.Sprintf("big entry: %v; read back %v; %d bytes in %d lines", bigErr, versions, len(raw), bytes.Count(raw, []byte("\n"))))
}
