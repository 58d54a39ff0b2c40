package eventsource

import (
	"encoding/json"
	"fmt"
)

// Upcaster turns the payload of one schema version of an event type into
// the next version's.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Upcasters is a registry of upcasters, one per event type and version
// step. Stored events are never rewritten: the store applies the chain as
// it reads, so an event stored at v1 reaches a reader at v3 through v1→v2
// and v2→v3. The zero value is empty and ready; register before reading.
type Upcasters struct {
	steps  map[string]map[int]Upcaster
	latest map[string]int
}

// Register adds the upcaster from version from to from+1 of eventType.
// Registering a step twice is a programming error, and panics.
func (u *Upcasters) Register(eventType string, from int, fn Upcaster) {
	if from < 1 || fn == nil {
		panic(fmt.Sprintf("eventsource: upcaster %s v%d: version must be at least 1 and the function set", eventType, from))
	}
	if u.steps == nil {
		u.steps, u.latest = map[string]map[int]Upcaster{}, map[string]int{}
	}
	if u.steps[eventType] == nil {
		u.steps[eventType] = map[int]Upcaster{}
	}
	if _, dup := u.steps[eventType][from]; dup {
		panic(fmt.Sprintf("eventsource: upcaster %s v%d→v%d registered twice", eventType, from, from+1))
	}
	u.steps[eventType][from] = fn
	u.latest[eventType] = max(u.latest[eventType], from+1)
}

// Latest is the version that eventType's events are upcast to: one above
// the highest registered step, or 1 when none is.
func (u *Upcasters) Latest(eventType string) int {
	if u == nil || u.latest[eventType] == 0 {
		return 1
	}
	return u.latest[eventType]
}

// Upcast brings ev to its type's latest version, one step at a time. An
// event at a version with no way up (a missing step) is an error; one at a
// newer version than any step knows is returned as it is, since compatible
// changes only add fields.
func (u *Upcasters) Upcast(ev Event) (Event, error) {
	if ev.SchemaVersion <= 0 {
		ev.SchemaVersion = 1
	}
	if u == nil {
		return ev, nil
	}
	for latest := u.Latest(ev.Type); ev.SchemaVersion < latest; ev.SchemaVersion++ {
		step := u.steps[ev.Type][ev.SchemaVersion]
		if step == nil {
			return ev, fmt.Errorf("eventsource: %s %s/%s v%d: no upcaster from schema version %d to %d", ev.Type, ev.AggregateType, ev.AggregateID, ev.Version, ev.SchemaVersion, ev.SchemaVersion+1)
		}
		p, err := step(ev.Payload)
		if err != nil {
			return ev, fmt.Errorf("eventsource: %s %s/%s v%d: upcast from schema version %d: %w", ev.Type, ev.AggregateType, ev.AggregateID, ev.Version, ev.SchemaVersion, err)
		}
		ev.Payload = p
	}
	return ev, nil
}
