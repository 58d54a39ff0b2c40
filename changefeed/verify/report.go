package verify

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "verify %s -> %s\n", r.Source, r.Target)
	fmt.Fprintf(&b, "  rows:      source %d, target %d\n", r.SourceRows, r.TargetRows)
	fmt.Fprintf(&b, "  columns:   %s\n", strings.Join(r.Columns, ", "))
	fmt.Fprintf(&b, "  ranges:    %d, %d differ (%d checksums compared)\n", r.Ranges, len(r.DifferingRanges), r.Checksums)
	if len(r.DifferingRanges) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "    FIRST KEY\tLAST KEY\tSOURCE ROWS\tTARGET ROWS\tDIFFERENCES")
		for _, g := range r.DifferingRanges {
			fmt.Fprintf(tw, "    %s\t%s\t%d\t%d\t%d\n", g.First, g.Last, g.SourceRows, g.TargetRows, g.Differences)
		}
		_ = tw.Flush()
	}
	if r.Rechecks > 0 {
		fmt.Fprintf(&b, "  rechecks:  %d, %d keys settled (in flight during the scan)\n", r.Rechecks, r.Settled)
	}
	list := func(title string, n int, keys []string) {
		if n == 0 {
			return
		}
		fmt.Fprintf(&b, "  %s (%d): %s", title, n, strings.Join(keys, ", "))
		if n > len(keys) {
			fmt.Fprintf(&b, ", … %d more", n-len(keys))
		}
		b.WriteByte('\n')
	}
	list("missing in target", r.MissingCount, r.Missing)
	list("extra in target", r.ExtraCount, r.Extra)
	if r.ChangedCount > 0 {
		fmt.Fprintf(&b, "  changed (%d):\n", r.ChangedCount)
		for _, c := range r.Changed {
			parts := make([]string, len(c.Columns))
			for i, d := range c.Columns {
				parts[i] = fmt.Sprintf("%s %q in source, %q in target", d.Column, d.Source, d.Target)
			}
			fmt.Fprintf(&b, "    %s: %s\n", c.Key, strings.Join(parts, "; "))
		}
		if r.ChangedCount > len(r.Changed) {
			fmt.Fprintf(&b, "    … %d more\n", r.ChangedCount-len(r.Changed))
		}
	}
	if r.ErrorCount > 0 {
		fmt.Fprintf(&b, "  unmappable source rows (%d):\n", r.ErrorCount)
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "    %s: %s\n", e.Key, e.Error)
		}
	}
	if r.Drift {
		fmt.Fprintf(&b, "result: DRIFT (%d missing, %d extra, %d changed, %d unmappable)\n", r.MissingCount, r.ExtraCount, r.ChangedCount, r.ErrorCount)
	} else {
		b.WriteString("result: in sync\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
