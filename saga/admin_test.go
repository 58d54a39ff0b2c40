package saga

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
)

const adminToken = "saga-admin-test-token"

// serveAdmin serves o's admin API on loopback and returns a client of it.
func serveAdmin(t *testing.T, o *Orchestrator, token string) (*Client, string) {
	t.Helper()
	e := httpx.NewEcho(httpx.Discard, prometheus.NewRegistry(), 1<<20)
	RegisterAdmin(e.Group("/v1"), o, func() string { return token })
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL+"/v1", adminToken)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL + "/v1"
}

func problemStatus(err error) int {
	var ce *ClientError
	if errors.As(err, &ce) {
		return ce.Problem.Status
	}
	return 0
}

// TestManualRetryAbort parks sagas whose compensation keeps failing in
// manual and takes them out through the admin API: retry while the fault
// lasts (manual again), retry once it is gone (compensated), abort
// (aborted, the uncompensated step left as it is), and both refused for a
// saga that is not manual.
func TestManualRetryAbort(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		p := newPlan()
		p.compFail["reserve"] = -1
		part := &participant{env: e, plan: p}
		o := newOrchestrator(t, e, nil, part.definition("manual", fastRetry, time.Minute))
		running(t, o)
		c, _ := serveAdmin(t, o, adminToken)

		failed := cat([]string{"compensating:reserve", "compensation_failed:reserve", "compensating:reserve", "compensation_failed:reserve",
			"compensating:reserve", "compensation_failed:reserve", "manual"})
		toManual := cat([]string{"running"}, fwd("reserve", "authorize"), []string{"started:confirm", "failed:confirm", "compensating"},
			comp("confirm", "authorize"), failed)
		for _, id := range []string{"retried", "aborted"} {
			if _, err := o.Start(ctx, "manual", id, map[string]string{"fail": "yes"}); err != nil {
				t.Fatal(err)
			}
			s := wait(t, o, id)
			if s.State != Manual || s.StepIndex != 0 || !strings.Contains(s.Error, "compensate step reserve") {
				t.Fatalf("%s: state %s at step %d (%s), want manual at step 0", id, s.State, s.StepIndex, s.Error)
			}
			if got := trail(s.Log); !slices.Equal(got, toManual) {
				t.Fatalf("%s: log\n got %s\nwant %s", id, join(got), join(toManual))
			}
		}

		steps := []struct {
			name      string
			fix       bool
			call      func() (*Saga, error)
			id        string
			wantState State
			wantTrail []string
			// wantEffects are the saga's committed effects afterwards.
			wantEffects []string
			wantStatus  int
		}{
			{name: "retry while the compensation still fails", id: "retried",
				call:      func() (*Saga, error) { return c.Retry(ctx, "retried", "") },
				wantState: Manual, wantTrail: cat(toManual, []string{"compensating"}, failed),
				wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize"}},
			{name: "retry once the fault is gone", id: "retried", fix: true,
				call:      func() (*Saga, error) { return c.Retry(ctx, "retried", "participant fixed") },
				wantState: Compensated, wantTrail: cat(toManual, []string{"compensating"}, failed, []string{"compensating"}, comp("reserve"), []string{"compensated"}),
				wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize", "undo:reserve"}},
			{name: "retry of a compensated saga is refused", id: "retried",
				call: func() (*Saga, error) { return c.Retry(ctx, "retried", "") }, wantStatus: http.StatusConflict},
			{name: "abort", id: "aborted",
				call:      func() (*Saga, error) { return c.Abort(ctx, "aborted", "reservation released by hand") },
				wantState: Aborted, wantTrail: cat(toManual, []string{"aborted"}),
				wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize"}},
			{name: "retry of an aborted saga is refused", id: "aborted",
				call: func() (*Saga, error) { return c.Retry(ctx, "aborted", "") }, wantStatus: http.StatusConflict},
			{name: "abort of an aborted saga is refused", id: "aborted",
				call: func() (*Saga, error) { return c.Abort(ctx, "aborted", "") }, wantStatus: http.StatusConflict},
			{name: "abort of an unknown saga", id: "nobody",
				call: func() (*Saga, error) { return c.Abort(ctx, "nobody", "") }, wantStatus: http.StatusNotFound},
		}
		for _, st := range steps {
			if st.fix {
				p.set(func(p *plan) { p.compFail["reserve"] = 0 })
			}
			_, err := st.call()
			if st.wantStatus != 0 {
				if problemStatus(err) != st.wantStatus {
					t.Errorf("%s: got %v, want a %d problem", st.name, err, st.wantStatus)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			s := wait(t, o, st.id)
			if s.State != st.wantState {
				t.Errorf("%s: state %s, want %s", st.name, s.State, st.wantState)
			}
			if got := trail(s.Log); !slices.Equal(got, st.wantTrail) {
				t.Errorf("%s: log\n got %s\nwant %s", st.name, join(got), join(st.wantTrail))
			}
			effects, err := e.effects(ctx, st.id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(effects, st.wantEffects) {
				t.Errorf("%s: effects %v, want %v", st.name, effects, st.wantEffects)
			}
		}
		s, err := c.Get(ctx, "aborted")
		if err != nil {
			t.Fatal(err)
		}
		if last := s.Log[len(s.Log)-1]; last.State != Aborted || last.Error != "reservation released by hand" {
			t.Errorf("the abort's log entry %+v does not carry the operator's reason", last)
		}
	})
}

// TestAdminAPI lists and shows sagas through the client, pages and
// filters, and checks the API's answers to bad requests.
func TestAdminAPI(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t, dsn)
		part := &participant{env: e, plan: newPlan()}
		o := newOrchestrator(t, e, nil, part.definition("admin", fastRetry, time.Minute))
		running(t, o)
		c, base := serveAdmin(t, o, adminToken)
		for i := range 5 {
			data := map[string]string{}
			if i%2 == 1 {
				data["fail"] = "yes"
			}
			id := fmt.Sprintf("admin-%d", i)
			if _, err := o.Start(ctx, "admin", id, data); err != nil {
				t.Fatal(err)
			}
			wait(t, o, id)
		}

		pageIDs := func(p *Page) []string {
			var out []string
			for _, s := range p.Sagas {
				out = append(out, s.ID)
			}
			return out
		}
		lists := []struct {
			name string
			f    Filter
			want []string
			next bool
		}{
			{"all", Filter{}, []string{"admin-4", "admin-3", "admin-2", "admin-1", "admin-0"}, false},
			{"completed", Filter{State: Completed}, []string{"admin-4", "admin-2", "admin-0"}, false},
			{"compensated", Filter{State: Compensated}, []string{"admin-3", "admin-1"}, false},
			{"manual", Filter{State: Manual}, nil, false},
			{"first page", Filter{Limit: 2}, []string{"admin-4", "admin-3"}, true},
		}
		for _, l := range lists {
			p, err := c.List(ctx, l.f)
			if err != nil {
				t.Fatalf("%s: %v", l.name, err)
			}
			if got := pageIDs(p); !slices.Equal(got, l.want) || (p.Next != 0) != l.next {
				t.Errorf("%s: %v next %d, want %v (a next page: %v)", l.name, got, p.Next, l.want, l.next)
			}
		}
		// Walking the pages visits every saga once.
		var walked []string
		for f := (Filter{Limit: 2}); ; {
			p, err := c.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			walked = append(walked, pageIDs(p)...)
			if p.Next == 0 {
				break
			}
			f.Before = p.Next
		}
		if want := []string{"admin-4", "admin-3", "admin-2", "admin-1", "admin-0"}; !slices.Equal(walked, want) {
			t.Errorf("paged walk %v, want %v", walked, want)
		}

		s, err := c.Get(ctx, "admin-1")
		if err != nil {
			t.Fatal(err)
		}
		if s.State != Compensated || len(s.Log) == 0 || s.Log[0].State != Running || s.Log[len(s.Log)-1].State != Compensated {
			t.Errorf("show admin-1: %+v", s)
		}

		raw := []struct {
			name, method, path, token string
			want                      int
		}{
			{"no token", http.MethodGet, "/sagas", "", http.StatusUnauthorized},
			{"wrong token", http.MethodGet, "/sagas", "wrong", http.StatusUnauthorized},
			{"unknown state", http.MethodGet, "/sagas?state=lost", adminToken, http.StatusBadRequest},
			{"bad limit", http.MethodGet, "/sagas?limit=0", adminToken, http.StatusBadRequest},
			{"unknown parameter", http.MethodGet, "/sagas?stat=manual", adminToken, http.StatusBadRequest},
			{"negative before", http.MethodGet, "/sagas?before=-1", adminToken, http.StatusBadRequest},
			{"unknown saga", http.MethodGet, "/sagas/nobody", adminToken, http.StatusNotFound},
			{"retry of a completed saga", http.MethodPost, "/sagas/admin-0/retry", adminToken, http.StatusConflict},
		}
		for _, r := range raw {
			req, _ := http.NewRequestWithContext(ctx, r.method, base+r.path, nil)
			if r.token != "" {
				req.Header.Set("Authorization", "Bearer "+r.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != r.want || resp.Header.Get("Content-Type") != httpx.ContentTypeProblem {
				t.Errorf("%s: %d %s, want %d %s", r.name, resp.StatusCode, resp.Header.Get("Content-Type"), r.want, httpx.ContentTypeProblem)
			}
		}

		// An API without a token is closed.
		closed, _ := serveAdmin(t, o, "")
		if _, err := closed.List(ctx, Filter{}); problemStatus(err) != http.StatusForbidden {
			t.Errorf("list without a configured token: %v, want 403", err)
		}
	})
}
