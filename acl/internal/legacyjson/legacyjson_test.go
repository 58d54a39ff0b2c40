package legacyjson_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/acl/internal/legacyjson"
)

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in  string
		v   int
		set bool
		err bool
	}{
		{`12`, 12, true, false}, {`"12"`, 12, true, false}, {`12.0`, 12, true, false}, {`-3`, -3, true, false},
		{`null`, 0, false, false}, {`12.5`, 0, false, true}, {`"x"`, 0, false, true}, {`true`, 0, false, true},
	} {
		var got legacyjson.Int
		err := json.Unmarshal([]byte(tc.in), &got)
		if (err != nil) != tc.err || got.V != tc.v || got.Set != tc.set {
			t.Errorf("%s: %+v, %v", tc.in, got, err)
		}
	}
}

func TestBool(t *testing.T) {
	for _, tc := range []struct {
		in       string
		v, set   bool
		wantFail bool
	}{
		{`true`, true, true, false}, {`1`, true, true, false}, {`"t"`, true, true, false}, {`"yes"`, true, true, false},
		{`false`, false, true, false}, {`0`, false, true, false}, {`"f"`, false, true, false},
		{`null`, false, false, false}, {`"maybe"`, false, false, true},
	} {
		var got legacyjson.Bool
		err := json.Unmarshal([]byte(tc.in), &got)
		if (err != nil) != tc.wantFail || got.V != tc.v || got.Set != tc.set {
			t.Errorf("%s: %+v, %v", tc.in, got, err)
		}
	}
}

func TestTime(t *testing.T) {
	want := time.Date(2026, 3, 4, 5, 6, 7, 500_000_000, time.UTC)
	for _, in := range []string{
		`"2026-03-04T05:06:07.5Z"`, `"2026-03-04T06:06:07.5+01:00"`, `"2026-03-04 05:06:07.5+00:00"`,
		`"2026-03-04 05:06:07.5"`, `"2026-03-04T05:06:07.5"`, `"2026-03-04 05:06:07.5 +0000 UTC"`, `1772600767500`,
	} {
		var got legacyjson.Time
		if err := json.Unmarshal([]byte(in), &got); err != nil || !got.V.Equal(want) || got.V.Location() != time.UTC {
			t.Errorf("%s: %v, %v; want %v", in, got.V, err, want)
		}
	}
	var null legacyjson.Time
	if err := json.Unmarshal([]byte(`null`), &null); err != nil || !null.V.IsZero() {
		t.Errorf("null: %v, %v", null.V, err)
	}
	for _, bad := range []string{`"yesterday"`, `true`, `"2026-13-01"`} {
		var got legacyjson.Time
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%s read as %v", bad, got.V)
		}
	}
}
