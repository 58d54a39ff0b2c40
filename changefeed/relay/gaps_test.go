package relay

import (
	"fmt"
	"testing"
)

func rows(seqs ...int64) []row {
	out := make([]row, len(seqs))
	for i, s := range seqs {
		out[i].seq = s
	}
	return out
}

func TestNewGaps(t *testing.T) {
	tests := []struct {
		position int64
		seqs     []int64
		want     string
	}{
		{0, nil, "[]"},
		{0, []int64{1, 2, 3}, "[]"},
		{0, []int64{2, 3}, "[{1 1 0}]"},
		{10, []int64{11, 15, 16, 20}, "[{12 14 0} {17 19 0}]"},
		{10, []int64{1000}, "[{11 999 0}]"},
	}
	for _, tt := range tests {
		got := fmt.Sprint(newGaps(tt.position, rows(tt.seqs...)))
		if got == "[]" || tt.want == "[]" {
			if (got == "[]") != (tt.want == "[]") {
				t.Errorf("newGaps(%d, %v) = %s, want %s", tt.position, tt.seqs, got, tt.want)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("newGaps(%d, %v) = %s, want %s", tt.position, tt.seqs, got, tt.want)
		}
	}
}

func TestFillGaps(t *testing.T) {
	tests := []struct {
		name  string
		gaps  []gap
		found []int64
		want  string
	}{
		{"nothing found", []gap{{1, 3, 7}}, nil, "[{1 3 7}]"},
		{"single filled", []gap{{5, 5, 7}}, []int64{5}, "[]"},
		{"low end", []gap{{1, 3, 7}}, []int64{1}, "[{2 3 7}]"},
		{"high end", []gap{{1, 3, 7}}, []int64{3}, "[{1 2 7}]"},
		{"middle splits", []gap{{1, 5, 7}}, []int64{3}, "[{1 2 7} {4 5 7}]"},
		{"several gaps", []gap{{1, 2, 7}, {10, 12, 9}}, []int64{2, 10, 12}, "[{1 1 7} {11 11 9}]"},
		{"outside ignored", []gap{{5, 6, 7}}, []int64{1, 9}, "[{5 6 7}]"},
		{"unsorted found", []gap{{1, 4, 0}}, []int64{4, 2}, "[{1 1 0} {3 3 0}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprint(fillGaps(tt.gaps, rows(tt.found...)))
			if got != tt.want {
				t.Errorf("fillGaps = %s, want %s", got, tt.want)
			}
		})
	}
}
