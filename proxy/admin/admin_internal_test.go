package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/proxy/control"
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
		{"invalid change", &control.ChangeError{Field: "weight", Msg: "must be 0 to 100"}, http.StatusUnprocessableEntity},
		{"unknown module", control.ErrModuleNotFound, http.StatusNotFound},
		{"file-managed", control.ErrFileManaged, http.StatusConflict},
		{"stale version", fmt.Errorf("replace: %w", control.ErrVersion), http.StatusPreconditionFailed},
		{"another writer saved first", fmt.Errorf("%w: %w", control.ErrVersion, &control.ConflictError{Base: 3, Stored: 4}), http.StatusPreconditionFailed},
		{"disk full", &control.PersistError{Err: pathErr(syscall.ENOSPC)}, http.StatusInsufficientStorage},
		{"quota", &control.PersistError{Err: pathErr(syscall.EDQUOT)}, http.StatusInsufficientStorage},
		{"read-only state dir", &control.PersistError{Err: pathErr(syscall.EROFS)}, http.StatusServiceUnavailable},
		{"disk full wrapped", fmt.Errorf("routes file: %w", &control.PersistError{Err: pathErr(syscall.ENOSPC)}), http.StatusInsufficientStorage},
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
