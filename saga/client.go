package saga

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stranglerkit/strangler/httpx"
)

// Client talks to a service's saga admin API (RegisterAdmin).
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// NewClient returns a client of the saga admin API under baseURL (such as
// "http://127.0.0.1:9103/v1"; "http://" is assumed when no scheme is
// given) with the bearer token.
func NewClient(baseURL, token string) (*Client, error) {
	u, err := httpx.BaseURL(baseURL, "saga service address")
	if err != nil {
		return nil, err
	}
	return &Client{base: u, token: token, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// ClientError is a call the API answered with a problem document.
type ClientError struct {
	Problem *httpx.Problem
}

func (e *ClientError) Error() string {
	if e.Problem.Detail != "" {
		return e.Problem.Title + ": " + e.Problem.Detail
	}
	return e.Problem.Title
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("saga service at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("saga service at %s: %w", c.base.Host, err)
	}
	if resp.StatusCode >= 400 {
		return &ClientError{Problem: httpx.ReadProblem(resp.StatusCode, b)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("saga service at %s: unexpected answer: %w", c.base.Host, err)
	}
	return nil
}

// List returns a page of sagas as Filter selects them.
func (c *Client) List(ctx context.Context, f Filter) (*Page, error) {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", string(f.State))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before != 0 {
		q.Set("before", strconv.FormatInt(f.Before, 10))
	}
	var p Page
	if err := c.do(ctx, http.MethodGet, "/sagas", q, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Get returns a saga with its log.
func (c *Client) Get(ctx context.Context, id string) (*Saga, error) {
	var s Saga
	if err := c.do(ctx, http.MethodGet, "/sagas/"+url.PathEscape(id), nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Retry resumes a manual saga's compensation.
func (c *Client) Retry(ctx context.Context, id, reason string) (*Saga, error) {
	return c.operate(ctx, id, "retry", reason)
}

// Abort gives up on a manual saga.
func (c *Client) Abort(ctx context.Context, id, reason string) (*Saga, error) {
	return c.operate(ctx, id, "abort", reason)
}

func (c *Client) operate(ctx context.Context, id, op, reason string) (*Saga, error) {
	var s Saga
	if err := c.do(ctx, http.MethodPost, "/sagas/"+url.PathEscape(id)+"/"+op, nil, OperatorRequest{Reason: reason}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
