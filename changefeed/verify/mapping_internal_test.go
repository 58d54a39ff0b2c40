package verify

import "testing"

// TestCanonicalJSON compares documents whatever their key order and
// spacing, as jsonb renders them, and keeps numbers as written.
func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		a, b  any
		equal bool
	}{
		{`[{"sku":"A","quantity":2}]`, `[{"quantity": 2, "sku": "A"}]`, true},
		{[]byte(`{"b":1,"a":{"d":null,"c":[1,2]}}`), `{"a": {"c": [1, 2], "d": null}, "b": 1}`, true},
		{`{"n":9007199254740993}`, `{"n": 9007199254740992}`, false},
		{`{"n":1}`, `{"n":2}`, false},
		{`[1,2]`, `[2,1]`, false},
		{`null`, `null`, true},
	}
	for _, tt := range tests {
		a, err := canonical(tt.a, "json")
		if err != nil {
			t.Fatalf("%v: %v", tt.a, err)
		}
		b, err := canonical(tt.b, "json")
		if err != nil {
			t.Fatalf("%v: %v", tt.b, err)
		}
		if (a == b) != tt.equal {
			t.Errorf("%v vs %v: %s and %s, want equal %v", tt.a, tt.b, a, b, tt.equal)
		}
	}
	for _, bad := range []string{`{"a":`, `{} {}`, `plain`} {
		if _, err := canonical(bad, "json"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
