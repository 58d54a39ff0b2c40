package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/httpx"
)

type order struct {
	CustomerID int64  `json:"customer_id"`
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
}

func newServer(t *testing.T, logs *bytes.Buffer) *echo.Echo {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(logs, nil))
	e := httpx.NewEcho(log, prometheus.NewRegistry(), 64)
	e.POST("/api/orders", func(c echo.Context) error {
		var o order
		if err := httpx.DecodeJSON(c, &o); err != nil {
			return err
		}
		var v httpx.Validator
		v.Check(o.Quantity > 0, "quantity", "must be positive")
		v.Check(o.SKU != "", "sku", "is required")
		if err := v.Err(); err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, o)
	})
	e.GET("/api/boom", func(c echo.Context) error { return errors.New("database on fire: password=hunter2") })
	e.GET("/api/stock", func(c echo.Context) error {
		return httpx.Conflict("out-of-stock", "Out of stock", "only %d left", 3)
	})
	return e
}

func do(e http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		detail      string
	}{
		{"valid", "POST", "/api/orders", "application/json", `{"customer_id":1,"sku":"A","quantity":2}`, 201, ""},
		{"malformed", "POST", "/api/orders", "application/json", `{"customer_id":`, 400, "malformed JSON: the body ends early"},
		{"syntax", "POST", "/api/orders", "application/json", `{"sku" "A"}`, 400, "malformed JSON at byte"},
		{"wrong type", "POST", "/api/orders", "application/json", `{"quantity":"two"}`, 400, `field "quantity" must be an integer, not string`},
		{"array body", "POST", "/api/orders", "application/json", `[1]`, 400, "the body must be an object, not array"},
		{"empty", "POST", "/api/orders", "application/json", ``, 400, "the body is empty"},
		{"trailing", "POST", "/api/orders", "application/json", `{"sku":"A","quantity":1} {}`, 400, "single JSON value"},
		{"not json", "POST", "/api/orders", "text/plain", `hi`, 415, `not "text/plain"`},
		{"too large by length", "POST", "/api/orders", "application/json", `{"sku":"` + strings.Repeat("a", 100) + `"}`, 413, "limit of 64 bytes"},
		{"validation lists all", "POST", "/api/orders", "application/json", `{"quantity":-1}`, 422, "2 fields are invalid"},
		{"conflict", "GET", "/api/stock", "", "", 409, "only 3 left"},
		{"no route", "GET", "/api/nope", "", "", 404, "no route matches"},
		{"wrong method", "DELETE", "/api/orders", "", "", 405, ""},
		{"internal error hides cause", "GET", "/api/boom", "", "", 500, "an internal error occurred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			rec := do(newServer(t, &logs), tt.method, tt.path, tt.contentType, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status < 400 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != httpx.ContentTypeProblem {
				t.Fatalf("content type = %q", ct)
			}
			var p httpx.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status != tt.status || p.Title == "" || p.Type == "" || p.Instance != tt.path || p.RequestID == "" {
				t.Fatalf("problem = %+v", p)
			}
			if !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("detail = %q, want it to contain %q", p.Detail, tt.detail)
			}
			if strings.Contains(rec.Body.String(), "hunter2") {
				t.Fatal("the problem leaks the internal error")
			}
		})
	}
}

func TestBodyLimitWithoutContentLength(t *testing.T) {
	e := newServer(t, &bytes.Buffer{})
	req := httptest.NewRequest("POST", "/api/orders", io.MultiReader(strings.NewReader(`{"sku":"`), strings.NewReader(strings.Repeat("a", 200)+`"}`)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413; body %s", rec.Code, rec.Body)
	}
}

func TestValidationFields(t *testing.T) {
	rec := do(newServer(t, &bytes.Buffer{}), "POST", "/api/orders", "application/json", `{"quantity":0}`)
	var p httpx.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	want := []httpx.FieldError{{Field: "quantity", Message: "must be positive"}, {Field: "sku", Message: "is required"}}
	if len(p.Errors) != 2 || p.Errors[0] != want[0] || p.Errors[1] != want[1] {
		t.Fatalf("errors = %+v, want %+v", p.Errors, want)
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		reuse    bool
	}{
		{"reuses a valid id", "abc-123", true},
		{"replaces a forged one", "x\r\nSet-Cookie: a=b", false},
		{"replaces an overlong one", strings.Repeat("a", 200), false},
		{"makes one", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newServer(t, &logs)
			req := httptest.NewRequest("GET", "/api/stock", nil)
			if tt.incoming != "" {
				req.Header[http.CanonicalHeaderKey(httpx.HeaderRequestID)] = []string{tt.incoming}
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			id := rec.Header().Get(httpx.HeaderRequestID)
			if !httpx.ValidRequestID(id) || (tt.reuse && id != tt.incoming) || (!tt.reuse && id == tt.incoming) {
				t.Fatalf("response id = %q", id)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("access log is not one JSON line: %q", logs.String())
			}
			for k, want := range map[string]any{"request_id": id, "module": "stock", "route": "/api/stock", "status": float64(409)} {
				if line[k] != want {
					t.Errorf("log[%s] = %v, want %v", k, line[k], want)
				}
			}
			if _, ok := line["duration_ms"]; !ok {
				t.Error("log line has no duration_ms")
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	e := newServer(t, &bytes.Buffer{})
	do(e, "GET", "/api/stock", "", "")
	rec := do(e, "GET", "/metrics", "", "")
	body := rec.Body.String()
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/stock",status="409"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="/api/stock",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestHealth(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = httpx.ErrorHandler(httpx.Discard)
	h := &httpx.Health{}
	failing := errors.New("db down")
	var dbErr error
	h.AddCheck("database", func(context.Context) error { return dbErr })
	h.Register(e)
	steps := []struct {
		ready  bool
		dbErr  error
		status int
	}{
		{false, nil, 503},
		{true, nil, 200},
		{true, failing, 503},
	}
	for _, s := range steps {
		h.SetReady(s.ready)
		dbErr = s.dbErr
		if rec := do(e, "GET", "/readyz", "", ""); rec.Code != s.status {
			t.Fatalf("ready=%v dbErr=%v: /readyz = %d, want %d", s.ready, s.dbErr, rec.Code, s.status)
		}
		if rec := do(e, "GET", "/healthz", "", ""); rec.Code != 200 {
			t.Fatalf("/healthz = %d", rec.Code)
		}
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := httpx.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, ln, h) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	// The request in flight finishes after the context ended.
	time.Sleep(50 * time.Millisecond)
	close(release)
	if s := <-got; s != "finished" {
		t.Fatalf("in-flight request got %q", s)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}

// TestEndpoint checks that an endpoint tells the configured address until
// Listen binds it, then the bound one, with Started closed; and that a
// Listen that fails names the address and leaves Started open.
func TestEndpoint(t *testing.T) {
	ep := httpx.NewEndpoint("127.0.0.1:0")
	if ep.Addr() != "127.0.0.1:0" {
		t.Fatalf("Addr before Listen = %s", ep.Addr())
	}
	ln, err := ep.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	select {
	case <-ep.Started():
	default:
		t.Fatal("Started is not closed after Listen")
	}
	if ep.Addr() != ln.Addr().String() || strings.HasSuffix(ep.Addr(), ":0") {
		t.Fatalf("Addr = %s, listener on %s", ep.Addr(), ln.Addr())
	}
	taken := httpx.NewEndpoint(ln.Addr().String())
	if _, err := taken.Listen(); err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Listen on a port in use = %v", err)
	}
	select {
	case <-taken.Started():
		t.Fatal("Started is closed after a failed Listen")
	default:
	}
}
