package eventsource

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Upcaster turns the payload of one schema version of an event type into
// the next version's.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Upcasters is a registry of upcasters, one per event type and version
// step. Stored events are never rewritten: the store applies the chain as
// it reads, so an event stored at v1 reaches a reader at v3 through v1→v2
// and v2→v3. The zero value is empty and ready; register before reading,
// and do not change it while it is read.
type Upcasters struct {
	steps  map[string]map[int]Upcaster
	latest map[string]int
	// current holds the versions declared with Current: the newest each
	// type's reader understands.
	current map[string]int
}

func (u *Upcasters) init() {
	if u.steps == nil {
		u.steps, u.latest, u.current = map[string]map[int]Upcaster{}, map[string]int{}, map[string]int{}
	}
}

// Register adds the upcaster from version from to from+1 of eventType.
// Registering a step twice is a programming error, and panics.
func (u *Upcasters) Register(eventType string, from int, fn Upcaster) {
	if from < 1 || fn == nil {
		panic(fmt.Sprintf("eventsource: upcaster %s v%d: version must be at least 1 and the function set", eventType, from))
	}
	u.init()
	if u.steps[eventType] == nil {
		u.steps[eventType] = map[int]Upcaster{}
	}
	if _, dup := u.steps[eventType][from]; dup {
		panic(fmt.Sprintf("eventsource: upcaster %s v%d→v%d registered twice", eventType, from, from+1))
	}
	u.steps[eventType][from] = fn
	u.latest[eventType] = max(u.latest[eventType], from+1)
}

// Current declares version as eventType's current schema version: the one
// its events are upcast to, and the newest the reader understands. Upcast
// refuses an event of a newer version with an *UnknownVersionError
// instead of passing it through, which suits a type whose changes are not
// all compatible ones: a newer release may have written it (during a
// rolling deploy, or after a rollback), and folding a payload whose
// meaning the reader does not know would read it wrong. Declaring a type
// twice is a programming error, and panics.
func (u *Upcasters) Current(eventType string, version int) {
	if version < 1 {
		panic(fmt.Sprintf("eventsource: current version of %s must be at least 1, not %d", eventType, version))
	}
	u.init()
	if _, dup := u.current[eventType]; dup {
		panic(fmt.Sprintf("eventsource: current version of %s declared twice", eventType))
	}
	u.current[eventType] = version
}

// Latest is the version that eventType's events are upcast to: the one
// declared with Current, or one above the highest registered step, or 1
// when there is neither.
func (u *Upcasters) Latest(eventType string) int {
	if u == nil {
		return 1
	}
	return max(u.latest[eventType], u.current[eventType], 1)
}

// Each calls fn for every registered step, by event type and then
// version, so that another reader of the same events (a changefeed
// consumer of their outbox copies) can register the same chain.
func (u *Upcasters) Each(fn func(eventType string, from int, up Upcaster)) {
	if u == nil {
		return
	}
	for _, t := range slices.Sorted(maps.Keys(u.steps)) {
		for _, from := range slices.Sorted(maps.Keys(u.steps[t])) {
			fn(t, from, u.steps[t][from])
		}
	}
}

// UnknownVersionError is the error of an event at a newer schema version
// than its type's declared current one (Upcasters.Current).
type UnknownVersionError struct {
	Type          string
	AggregateType string
	AggregateID   string
	// Version is the event's number in its stream.
	Version int64
	// SchemaVersion is the event's; Current is the newest the reader
	// understands.
	SchemaVersion, Current int
}

func (e *UnknownVersionError) Error() string {
	return fmt.Sprintf("eventsource: %s %s/%s v%d is at schema version %d, but this reader knows versions up to %d only: a newer release wrote it, and it is not read rather than read wrong",
		e.Type, e.AggregateType, e.AggregateID, e.Version, e.SchemaVersion, e.Current)
}

// Upcast brings ev to its type's latest version, one step at a time. An
// event at a version with no way up (a missing step) is an error; one at a
// newer version than its type's declared current one is an
// *UnknownVersionError; one at a newer version than any step knows, of a
// type with no declared current version, is returned as it is, since
// compatible changes only add fields.
func (u *Upcasters) Upcast(ev Event) (Event, error) {
	if ev.SchemaVersion <= 0 {
		ev.SchemaVersion = 1
	}
	if u == nil {
		return ev, nil
	}
	if cur, ok := u.current[ev.Type]; ok && ev.SchemaVersion > cur {
		return ev, &UnknownVersionError{Type: ev.Type, AggregateType: ev.AggregateType, AggregateID: ev.AggregateID, Version: ev.Version,
			SchemaVersion: ev.SchemaVersion, Current: cur}
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
