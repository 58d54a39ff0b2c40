package cli

import (
	"strings"
	"testing"

	"github.com/stranglerkit/strangler/changefeed/verify"
)

func TestParseColumn(t *testing.T) {
	tests := []struct {
		in      string
		want    verify.Column
		wantErr string
	}{
		{"name=title", verify.Column{Target: "name", Source: "title"}, ""},
		{"name=title:trim", verify.Column{Target: "name", Source: "title", Transform: "trim"}, ""},
		{"price_cents=price:cents:int", verify.Column{Target: "price_cents", Source: "price", Transform: "cents", Type: "int"}, ""},
		{"active=active::bool", verify.Column{Target: "active", Source: "active", Type: "bool"}, ""},
		{"active=flag:bool", verify.Column{Target: "active", Source: "flag", Type: "bool"}, ""},
		{"sku=ref:prefix:SKU-", verify.Column{Target: "sku", Source: "ref", Transform: "prefix:SKU-"}, ""},
		{"sku=ref:prefix:SKU-:text", verify.Column{Target: "sku", Source: "ref", Transform: "prefix:SKU-", Type: "text"}, ""},
		{"name", verify.Column{}, "want target=source"},
		{"=x", verify.Column{}, "want target=source"},
		{"name=title:rot13", verify.Column{}, "transform"},
	}
	for _, tt := range tests {
		got, err := parseColumn(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseColumn(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseColumn(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestVerifySummary(t *testing.T) {
	tests := []struct {
		rep  verify.Report
		want string
	}{
		{verify.Report{SourceRows: 40}, "40 rows match"},
		{verify.Report{SourceRows: 40, Rechecks: 1, Settled: 2}, "40 rows match (2 settled on recheck)"},
		{verify.Report{SourceRows: 40, Drift: true, ChangedCount: 1}, "0 missing, 0 extra, 1 changed of 40 rows"},
		{verify.Report{SourceRows: 40, Drift: true, MissingCount: 1, Rechecks: 5, Settled: 3}, "1 missing, 0 extra, 0 changed of 40 rows (3 settled on recheck)"},
	}
	for _, tt := range tests {
		if got := verifySummary(&tt.rep); got != tt.want {
			t.Errorf("verifySummary(%+v) = %q, want %q", tt.rep, got, tt.want)
		}
	}
}
