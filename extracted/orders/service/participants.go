package service

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
	"github.com/stranglerkit/strangler/saga"
)

// participant calls one saga participant's HTTP API with the step's
// idempotency key.
type participant struct {
	name string
	base *url.URL
	hc   *http.Client
}

// maxIdlePerHost is how many idle connections a participant's client
// keeps to its host: as many as the orchestrator's workers call at once
// (16 by default) and some, where http.DefaultTransport keeps 2, so that
// concurrent sagas reuse their connections instead of dialling (and
// leaving in TIME_WAIT) one per call.
const maxIdlePerHost = 64

func newParticipant(name, baseURL string, timeout time.Duration) (*participant, error) {
	u, err := httpx.BaseURL(baseURL, name+" address")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxIdlePerHost
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &participant{name: name, base: u, hc: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// ProblemError is a participant's answer with a problem document. A 4xx
// other than 408 and 429 is permanent: retrying cannot change it.
type ProblemError struct {
	Participant string
	Problem     *httpx.Problem
}

func (e *ProblemError) Error() string { return e.Participant + ": " + e.Problem.Error() }

// Permanent reports whether retrying cannot change the answer.
func (e *ProblemError) Permanent() bool {
	s := e.Problem.Status
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// Slug is the problem type's name within docs/problems.md.
func (e *ProblemError) Slug() string {
	t := e.Problem.Type
	if len(t) > len(httpx.ProblemTypeBase) && t[:len(httpx.ProblemTypeBase)] == httpx.ProblemTypeBase {
		return t[len(httpx.ProblemTypeBase):]
	}
	return ""
}

// post sends body as JSON to path with the idempotency key (when not
// empty) and decodes the answer into out. A problem answer is a
// *ProblemError, marked saga.Permanent when it is one.
func (p *participant) post(ctx context.Context, path, key string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := *p.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set(saga.HeaderIdempotencyKey, key)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s at %s: %w", p.name, p.base.Host, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s at %s: %w", p.name, p.base.Host, err)
	}
	if resp.StatusCode >= 400 {
		pe := &ProblemError{Participant: p.name, Problem: httpx.ReadProblem(resp.StatusCode, rb)}
		if pe.Permanent() {
			return saga.Permanent(pe)
		}
		return pe
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("%s at %s: unexpected answer: %w", p.name, p.base.Host, err)
	}
	return nil
}

// Inventory is the inventory service's /v1 API as the saga uses it.
type Inventory struct{ p *participant }

// NewInventory returns the client of the inventory service at baseURL.
func NewInventory(baseURL string, timeout time.Duration) (*Inventory, error) {
	p, err := newParticipant("inventory service", baseURL, timeout)
	if err != nil {
		return nil, err
	}
	return &Inventory{p: p}, nil
}

// Item is the inventory service's answer to a move.
type Item struct {
	SKU       string `json:"sku"`
	Warehouse string `json:"warehouse"`
	OnHand    int    `json:"on_hand"`
	Reserved  int    `json:"reserved"`
}

type move struct {
	Warehouse string `json:"warehouse,omitempty"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference,omitempty"`
}

func skuPath(sku, what string) string { return "/v1/items/" + url.PathEscape(sku) + "/" + what }

// Reserve reserves quantity of sku under key, in the warehouse with the
// most available.
func (i *Inventory) Reserve(ctx context.Context, key, sku string, quantity int, reference string) (Item, error) {
	var it Item
	err := i.p.post(ctx, skuPath(sku, "reservations"), key, move{Quantity: quantity, Reference: reference}, &it)
	return it, err
}

// Release undoes the reservation made under key (nothing, and the key
// refused from then on, when there was none).
func (i *Inventory) Release(ctx context.Context, key, sku string) error {
	return i.p.post(ctx, skuPath(sku, "releases"), key, struct{}{}, nil)
}

// ReleaseUnkeyed releases reserved units that no saga key reserved, such
// as an imported order's.
func (i *Inventory) ReleaseUnkeyed(ctx context.Context, sku, warehouse string, quantity int, reference string) error {
	return i.p.post(ctx, skuPath(sku, "releases"), "", move{Warehouse: warehouse, Quantity: quantity, Reference: reference}, nil)
}

// Ship takes reserved units off hand, once per key.
func (i *Inventory) Ship(ctx context.Context, key, sku, warehouse string, quantity int, reference string) error {
	return i.p.post(ctx, skuPath(sku, "shipments"), key, move{Warehouse: warehouse, Quantity: quantity, Reference: reference}, nil)
}

// Payments is the monolith's /api/payments API as the saga uses it.
type Payments struct{ p *participant }

// NewPayments returns the client of the payments module at the
// monolith's baseURL.
func NewPayments(baseURL string, timeout time.Duration) (*Payments, error) {
	p, err := newParticipant("payments", baseURL, timeout)
	if err != nil {
		return nil, err
	}
	return &Payments{p: p}, nil
}

// Authorization is the payments module's authorization, as far as the
// orders service reads it.
type Authorization struct {
	ID             int64  `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	AmountCents    int64  `json:"amount_cents"`
	Status         string `json:"status"`
}

// Authorize holds amount of the customer's credit under key.
func (p *Payments) Authorize(ctx context.Context, key string, customer, amount int64) (Authorization, error) {
	var a Authorization
	in := map[string]any{"customer_id": customer, "amount_cents": amount, "idempotency_key": key}
	err := p.p.post(ctx, "/api/payments/authorizations", "", in, &a)
	return a, err
}

// Void releases the hold made under key; a key never authorized is
// recorded, so that it cannot be authorized later.
func (p *Payments) Void(ctx context.Context, key string) error {
	return p.p.post(ctx, "/api/payments/voids", "", map[string]string{"idempotency_key": key}, nil)
}

// Capture charges the authorization id.
func (p *Payments) Capture(ctx context.Context, id int64) error {
	return p.p.post(ctx, "/api/payments/authorizations/"+strconv.FormatInt(id, 10)+"/capture", "", struct{}{}, nil)
}
