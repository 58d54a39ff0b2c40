package domain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func placed() domain.Placed {
	return domain.Placed{ID: 1042, CustomerID: 7, CustomerEmail: "anna@example.nl", Currency: "EUR", TotalCents: 2580 + 990, PlacedAt: t0,
		Lines: []domain.Line{
			{LineNo: 1, SKU: "COF-ETH-250", ProductRef: "P-000001", ProductName: "Ethiopia", UnitPriceCents: 1290, Quantity: 2, LineTotalCents: 2580, Warehouse: "nl-ams"},
			{LineNo: 2, SKU: "TEA-SEN-100", ProductRef: "P-000002", ProductName: "Sencha", UnitPriceCents: 990, Quantity: 1, LineTotalCents: 990, Warehouse: "nl-ams"},
		}}
}

// fold runs commands on a new order, each on the state the ones before
// left, applying their events as the store would, and returns the state,
// the event types in order and the last command's error.
func fold(t *testing.T, cmds ...func(domain.Order) ([]eventsource.Event, error)) (domain.Order, []string, error) {
	t.Helper()
	var (
		o     domain.Order
		types []string
		err   error
	)
	for _, cmd := range cmds {
		var evs []eventsource.Event
		evs, err = cmd(o)
		if err != nil {
			continue
		}
		for _, ev := range evs {
			ev.AggregateID, ev.Version, ev.OccurredAt = "1042", o.Version+1, t0.Add(time.Duration(o.Version)*time.Minute)
			if o, err = domain.Apply(o, ev); err != nil {
				t.Fatalf("apply %s: %v", ev.Type, err)
			}
			types = append(types, ev.Type)
		}
	}
	return o, types, err
}

type cmd = func(domain.Order) ([]eventsource.Event, error)

var (
	place     cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.Place(placed()) }
	reserve   cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.ReserveStock() }
	failStock cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.FailStockReservation("out of stock") }
	release   cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.ReleaseStock() }
	authorize cmd = func(o domain.Order) ([]eventsource.Event, error) {
		return o.AuthorizePayment(domain.Authorization{AuthorizationID: "auth-1", AmountCents: o.TotalCents})
	}
	decline cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.DeclinePayment("over the credit limit") }
	void    cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.VoidPayment() }
	pay     cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.Pay(t0.Add(time.Hour)) }
	ship    cmd = func(o domain.Order) ([]eventsource.Event, error) { return o.Ship(t0.Add(2 * time.Hour)) }
	cancel  cmd = func(o domain.Order) ([]eventsource.Event, error) {
		return o.Cancel("customer asked", t0.Add(3*time.Hour))
	}
	email cmd = func(o domain.Order) ([]eventsource.Event, error) {
		return o.ChangeCustomerEmail("anna.devries@example.nl")
	}
)

// TestCommands runs histories of commands and checks the events they
// cause, the state they leave and the refusals, with the monolith's
// lifecycle and the saga's guards: a retried step causes nothing, a
// compensation of a step that never ran records only what keeps a late
// step out, and a step after its compensation is refused.
func TestCommands(t *testing.T) {
	tests := []struct {
		name      string
		cmds      []cmd
		want      []string
		status    domain.Status
		stock     domain.Step
		payment   domain.Step
		wantErr   error
		wantEmail string
	}{
		{"happy path", []cmd{place, reserve, authorize, pay, ship}, []string{domain.EventPlaced, domain.EventStockReserved, domain.EventPaymentAuthorized, domain.EventPaid, domain.EventShipped}, domain.StatusShipped, domain.StepDone, domain.StepDone, nil, ""},
		{"retried steps cause nothing", []cmd{place, reserve, reserve, authorize, authorize}, []string{domain.EventPlaced, domain.EventStockReserved, domain.EventPaymentAuthorized}, domain.StatusPlaced, domain.StepDone, domain.StepDone, nil, ""},
		{"payment declined, compensated", []cmd{place, reserve, decline, release, void, cancel}, []string{domain.EventPlaced, domain.EventStockReserved, domain.EventPaymentDeclined, domain.EventStockReleased, domain.EventCancelled}, domain.StatusCancelled, domain.StepReleased, domain.StepFailed, nil, ""},
		{"stock failed: nothing to release", []cmd{place, failStock, release, cancel}, []string{domain.EventPlaced, domain.EventStockReservationFailed, domain.EventCancelled}, domain.StatusCancelled, domain.StepFailed, domain.StepPending, nil, ""},
		{"release before reserve refuses the late reserve", []cmd{place, release, reserve}, []string{domain.EventPlaced, domain.EventStockReleased}, domain.StatusPlaced, domain.StepReleased, domain.StepPending, domain.ErrTransition, ""},
		{"void before authorize refuses the late authorize", []cmd{place, void, authorize}, []string{domain.EventPlaced, domain.EventPaymentVoided}, domain.StatusPlaced, domain.StepPending, domain.StepReleased, domain.ErrTransition, ""},
		{"released twice", []cmd{place, reserve, release, release}, []string{domain.EventPlaced, domain.EventStockReserved, domain.EventStockReleased}, domain.StatusPlaced, domain.StepReleased, domain.StepPending, nil, ""},
		{"cancel a paid order", []cmd{place, pay, cancel}, []string{domain.EventPlaced, domain.EventPaid, domain.EventCancelled}, domain.StatusCancelled, domain.StepPending, domain.StepPending, nil, ""},
		{"ship a placed order", []cmd{place, ship}, []string{domain.EventPlaced}, domain.StatusPlaced, domain.StepPending, domain.StepPending, domain.ErrTransition, ""},
		{"pay twice", []cmd{place, pay, pay}, []string{domain.EventPlaced, domain.EventPaid}, domain.StatusPaid, domain.StepPending, domain.StepPending, domain.ErrTransition, ""},
		{"cancel a shipped order", []cmd{place, pay, ship, cancel}, []string{domain.EventPlaced, domain.EventPaid, domain.EventShipped}, domain.StatusShipped, domain.StepPending, domain.StepPending, domain.ErrTransition, ""},
		{"cancel twice", []cmd{place, cancel, cancel}, []string{domain.EventPlaced, domain.EventCancelled}, domain.StatusCancelled, domain.StepPending, domain.StepPending, domain.ErrTransition, ""},
		{"authorize a cancelled order", []cmd{place, cancel, authorize}, []string{domain.EventPlaced, domain.EventCancelled}, domain.StatusCancelled, domain.StepPending, domain.StepPending, domain.ErrTransition, ""},
		{"place twice", []cmd{place, place}, []string{domain.EventPlaced}, domain.StatusPlaced, domain.StepPending, domain.StepPending, domain.ErrExists, ""},
		{"pay an order never placed", []cmd{pay}, nil, "", domain.StepPending, domain.StepPending, domain.ErrNotFound, ""},
		{"e-mail changes once", []cmd{place, email, email}, []string{domain.EventPlaced, domain.EventCustomerEmailChanged}, domain.StatusPlaced, domain.StepPending, domain.StepPending, nil, "anna.devries@example.nl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, types, err := fold(t, tt.cmds...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("last command: %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(types, tt.want) {
				t.Errorf("events %v, want %v", types, tt.want)
			}
			if o.Status != tt.status || o.Stock != tt.stock || o.Payment != tt.payment {
				t.Errorf("state %s, stock %q, payment %q; want %s, %q, %q", o.Status, o.Stock, o.Payment, tt.status, tt.stock, tt.payment)
			}
			if o.Exists() && o.Version != int64(len(types)) {
				t.Errorf("version %d after %d events", o.Version, len(types))
			}
			if tt.wantEmail != "" && o.CustomerEmail != tt.wantEmail {
				t.Errorf("e-mail %q, want %q", o.CustomerEmail, tt.wantEmail)
			}
		})
	}
}

// TestFoldKeepsWhatWasPlaced checks the state a full lifecycle leaves: the
// lines and totals as placed, the times of each step.
func TestFoldKeepsWhatWasPlaced(t *testing.T) {
	o, _, err := fold(t, place, reserve, authorize, pay, ship)
	if err != nil {
		t.Fatal(err)
	}
	p := placed()
	if o.ID != p.ID || o.CustomerID != p.CustomerID || o.TotalCents != p.TotalCents || !slices.Equal(o.Lines, p.Lines) || !o.PlacedAt.Equal(t0) {
		t.Errorf("order %+v does not hold what was placed", o)
	}
	if o.PaidAt == nil || !o.PaidAt.Equal(t0.Add(time.Hour)) || o.ShippedAt == nil || !o.ShippedAt.Equal(t0.Add(2*time.Hour)) || o.CancelledAt != nil {
		t.Errorf("times: paid %v, shipped %v, cancelled %v", o.PaidAt, o.ShippedAt, o.CancelledAt)
	}
	if o.AuthorizationID != "auth-1" || !o.UpdatedAt.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("authorization %q, updated %v", o.AuthorizationID, o.UpdatedAt)
	}
}

// TestPlaceRefusesBadOrders checks the input rules of Place and Import.
func TestPlaceRefusesBadOrders(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *domain.Placed)
	}{
		{"no id", func(p *domain.Placed) { p.ID = 0 }},
		{"no customer", func(p *domain.Placed) { p.CustomerID = 0 }},
		{"bad currency", func(p *domain.Placed) { p.Currency = "EURO" }},
		{"no time", func(p *domain.Placed) { p.PlacedAt = time.Time{} }},
		{"no lines", func(p *domain.Placed) { p.Lines, p.TotalCents = nil, 0 }},
		{"repeated sku", func(p *domain.Placed) { p.Lines[1].SKU = p.Lines[0].SKU }},
		{"zero quantity", func(p *domain.Placed) { p.Lines[0].Quantity, p.Lines[0].LineTotalCents, p.TotalCents = 0, 0, 990 }},
		{"line total", func(p *domain.Placed) { p.Lines[0].LineTotalCents++ }},
		{"order total", func(p *domain.Placed) { p.TotalCents++ }},
		{"line numbers", func(p *domain.Placed) { p.Lines[1].LineNo = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := placed()
			tt.edit(&p)
			if _, err := (domain.Order{}).Place(p); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("Place = %v, want ErrInvalid", err)
			}
			if _, err := (domain.Order{}).Import(domain.Imported{Placed: p, Status: domain.StatusPaid}); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("Import = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := (domain.Order{}).Import(domain.Imported{Placed: placed(), Status: "lost"}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("Import of an unknown status = %v", err)
	}
}

// TestImport checks that an imported order takes the monolith's status
// and stock, and that importing it again changes nothing.
func TestImport(t *testing.T) {
	paidAt := t0.Add(time.Hour)
	imp := cmd(func(o domain.Order) ([]eventsource.Event, error) {
		return o.Import(domain.Imported{Placed: placed(), Status: domain.StatusPaid, PaidAt: &paidAt, LegacyVersion: 2})
	})
	o, types, err := fold(t, imp, imp, ship)
	if err != nil || !slices.Equal(types, []string{domain.EventImported, domain.EventShipped}) {
		t.Fatalf("events %v, %v", types, err)
	}
	if o.Status != domain.StatusShipped || o.Stock != domain.StepDone || o.PaidAt == nil || !o.PaidAt.Equal(paidAt) {
		t.Errorf("imported order %+v", o)
	}
}

// TestLifecycle checks From against the monolith's rules.
func TestLifecycle(t *testing.T) {
	allowed := map[domain.Status][]domain.Status{
		domain.StatusPlaced:    {domain.StatusPaid, domain.StatusCancelled},
		domain.StatusPaid:      {domain.StatusShipped, domain.StatusCancelled},
		domain.StatusShipped:   nil,
		domain.StatusCancelled: nil,
	}
	for _, from := range domain.Statuses {
		for _, to := range domain.Statuses {
			if got, want := slices.Contains(domain.From(to), from), slices.Contains(allowed[from], to); got != want {
				t.Errorf("%s → %s allowed = %v, want %v", from, to, got, want)
			}
		}
		if from.Open() != (from == domain.StatusPlaced || from == domain.StatusPaid) || !from.Valid() {
			t.Errorf("%s: open %v, valid %v", from, from.Open(), from.Valid())
		}
	}
}
