package eventsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
)

// accountUpcasters is the history of "account.opened": v1 had a name, v2
// split it into first and last, v3 added a currency, EUR for every account
// opened before.
func accountUpcasters() *eventsource.Upcasters {
	up := &eventsource.Upcasters{}
	up.Register("account.opened", 1, func(p json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(p, &v1); err != nil {
			return nil, err
		}
		first, last, _ := strings.Cut(v1.Name, " ")
		return json.Marshal(map[string]string{"first": first, "last": last})
	})
	up.Register("account.opened", 2, func(p json.RawMessage) (json.RawMessage, error) {
		var v2 map[string]any
		if err := json.Unmarshal(p, &v2); err != nil {
			return nil, err
		}
		v2["currency"] = "EUR"
		return json.Marshal(v2)
	})
	return up
}

type openedV3 struct {
	First    string `json:"first"`
	Last     string `json:"last"`
	Currency string `json:"currency"`
}

// TestUpcastOnRead stores "account.opened" rows at schema versions 1, 2
// and 3 with plain SQL, as an older release of the service wrote them, and
// reads them back at version 3 through Load and ReadAll; the stored rows
// stay as they were.
func TestUpcastOnRead(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, gdb := openStore(t, dsn, accountUpcasters())
		stored := []struct {
			id      string
			version int
			payload string
		}{
			{"a-1", 1, `{"name":"Anna de Vries"}`},
			{"a-2", 2, `{"first":"Ben","last":"Okafor"}`},
			{"a-3", 3, `{"first":"Chen","last":"Li","currency":"GBP"}`},
		}
		for _, r := range stored {
			err := gdb.Exec("INSERT INTO es_events (id, aggregate_type, aggregate_id, version, type, schema_version, occurred_at, payload) VALUES (?, 'account', ?, 1, 'account.opened', ?, ?, ?)",
				uuid.NewString(), r.id, r.version, time.Now().UTC(), r.payload).Error
			if err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]openedV3{
			"a-1": {"Anna", "de Vries", "EUR"},
			"a-2": {"Ben", "Okafor", "EUR"},
			"a-3": {"Chen", "Li", "GBP"},
		}
		all, err := s.ReadAll(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Fatalf("ReadAll = %d events, want 3", len(all))
		}
		for _, ev := range all {
			loaded, err := s.Load(ctx, ev.AggregateID, 0)
			if err != nil || len(loaded) != 1 {
				t.Fatalf("Load(%s) = %v, %v", ev.AggregateID, loaded, err)
			}
			for _, got := range []eventsource.Event{ev, loaded[0]} {
				var o openedV3
				if err := got.Decode(&o); err != nil {
					t.Fatal(err)
				}
				if got.SchemaVersion != 3 || o != want[got.AggregateID] {
					t.Errorf("%s read at v%d as %+v, want v3 %+v", got.AggregateID, got.SchemaVersion, o, want[got.AggregateID])
				}
			}
		}
		var versions []int
		if err := gdb.Raw("SELECT schema_version FROM es_events ORDER BY position").Scan(&versions).Error; err != nil {
			t.Fatal(err)
		}
		if len(versions) != 3 || versions[0] != 1 || versions[1] != 2 {
			t.Errorf("stored schema versions = %v, want them untouched (1, 2, 3)", versions)
		}
	})
}

// TestUpcasters checks the registry on its own: the chain, an event newer
// than any step, a missing step, a failing step and types without steps.
func TestUpcasters(t *testing.T) {
	up := accountUpcasters()
	gap := &eventsource.Upcasters{}
	gap.Register("x", 2, func(p json.RawMessage) (json.RawMessage, error) { return p, nil })
	failing := &eventsource.Upcasters{}
	failing.Register("x", 1, func(json.RawMessage) (json.RawMessage, error) { return nil, errBadPayload })
	strict := accountUpcasters()
	strict.Current("account.opened", 3)
	strict.Current("account.closed", 1)
	ahead := &eventsource.Upcasters{}
	ahead.Current("x", 2)
	tests := []struct {
		name        string
		up          *eventsource.Upcasters
		ev          eventsource.Event
		wantVersion int
		wantPayload string
		wantErr     string
	}{
		{"v1 to v3", up, eventsource.Event{Type: "account.opened", SchemaVersion: 1, Payload: []byte(`{"name":"A B"}`)}, 3, `{"currency":"EUR","first":"A","last":"B"}`, ""},
		{"zero version is v1", up, eventsource.Event{Type: "account.opened", Payload: []byte(`{"name":"A B"}`)}, 3, `{"currency":"EUR","first":"A","last":"B"}`, ""},
		{"newer than known", up, eventsource.Event{Type: "account.opened", SchemaVersion: 4, Payload: []byte(`{"x":1}`)}, 4, `{"x":1}`, ""},
		{"no steps for the type", up, eventsource.Event{Type: "account.closed", SchemaVersion: 1, Payload: []byte(`{}`)}, 1, `{}`, ""},
		{"nil registry", nil, eventsource.Event{Type: "x", SchemaVersion: 1, Payload: []byte(`{}`)}, 1, `{}`, ""},
		{"missing step", gap, eventsource.Event{Type: "x", SchemaVersion: 1, Payload: []byte(`{}`)}, 0, "", "no upcaster from schema version 1 to 2"},
		{"failing step", failing, eventsource.Event{Type: "x", SchemaVersion: 1, Payload: []byte(`{}`)}, 0, "", "bad payload"},
		{"current: v1 to v3", strict, eventsource.Event{Type: "account.opened", SchemaVersion: 1, Payload: []byte(`{"name":"A B"}`)}, 3, `{"currency":"EUR","first":"A","last":"B"}`, ""},
		{"current: at v3", strict, eventsource.Event{Type: "account.opened", SchemaVersion: 3, Payload: []byte(`{"x":1}`)}, 3, `{"x":1}`, ""},
		{"current: newer refused", strict, eventsource.Event{Type: "account.opened", SchemaVersion: 4, Payload: []byte(`{"x":1}`)}, 0, "", "is at schema version 4, but this reader knows versions up to 3 only"},
		{"current without steps: newer refused", strict, eventsource.Event{Type: "account.closed", SchemaVersion: 2, Payload: []byte(`{}`)}, 0, "", "knows versions up to 1 only"},
		{"current above the steps", ahead, eventsource.Event{Type: "x", SchemaVersion: 1, Payload: []byte(`{}`)}, 0, "", "no upcaster from schema version 1 to 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.up.Upcast(tt.ev)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Upcast = %v, want error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.SchemaVersion != tt.wantVersion || string(got.Payload) != tt.wantPayload {
				t.Errorf("Upcast = v%d %s, %v; want v%d %s", got.SchemaVersion, got.Payload, err, tt.wantVersion, tt.wantPayload)
			}
		})
	}
}

// TestUpcastersUnknownVersion checks that the refusal of a newer version
// than the declared current one is an *UnknownVersionError naming the
// event, and that Each lists the steps in order.
func TestUpcastersUnknownVersion(t *testing.T) {
	up := accountUpcasters()
	up.Current("account.opened", 3)
	_, err := up.Upcast(eventsource.Event{Type: "account.opened", SchemaVersion: 5, AggregateType: "account", AggregateID: "a-9", Version: 2, Payload: []byte(`{}`)})
	var unknown *eventsource.UnknownVersionError
	if !errors.As(err, &unknown) {
		t.Fatalf("Upcast of v5 = %v, want an UnknownVersionError", err)
	}
	want := eventsource.UnknownVersionError{Type: "account.opened", AggregateType: "account", AggregateID: "a-9", Version: 2, SchemaVersion: 5, Current: 3}
	if *unknown != want {
		t.Errorf("error %+v, want %+v", *unknown, want)
	}
	var steps []string
	up.Each(func(eventType string, from int, _ eventsource.Upcaster) {
		steps = append(steps, fmt.Sprintf("%s v%d", eventType, from))
	})
	if got := strings.Join(steps, ", "); got != "account.opened v1, account.opened v2" {
		t.Errorf("Each = %s", got)
	}
}

var errBadPayload = errors.New("bad payload")
