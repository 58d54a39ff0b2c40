package verify

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/stranglerkit/strangler/db"
)

// Config is the "verify" section of the config: the named checks that
// `strangler verify NAME` runs.
type Config struct {
	// Checks are the named comparisons.
	Checks []Check `yaml:"checks"`
}

// Check is one named comparison of a source table with a target table.
type Check struct {
	// Name identifies the check on the command line.
	Name string `yaml:"name"`
	// Source is the table of record, usually the monolith's.
	Source Endpoint `yaml:"source"`
	// Target is the copy, usually the extracted service's.
	Target Endpoint `yaml:"target"`
	// Columns lists the compared target columns and their sources. If
	// empty, every target column but the key, by the same name.
	Columns []Column `yaml:"columns"`
	// KeyFormat turns a source key into a target key, %s standing for the
	// source key, such as "SKU-%s". If empty, the keys are equal.
	KeyFormat string `yaml:"key_format"`
	// RangeSize is the number of keys per checksummed range. If zero, 1000.
	RangeSize int `yaml:"range_size"`
}

// Endpoint is one side of a check.
type Endpoint struct {
	// DSN names the database. If empty, the monolith's (monolith.dsn).
	DSN string `yaml:"dsn"`
	// Table is the table, optionally schema-qualified.
	Table string `yaml:"table"`
	// Key is the key column. If empty, "id".
	Key string `yaml:"key"`
}

// SetDefaults fills each check's empty fields.
func (c *Config) SetDefaults(string) {
	for i := range c.Checks {
		for _, e := range []*Endpoint{&c.Checks[i].Source, &c.Checks[i].Target} {
			if e.Key == "" {
				e.Key = "id"
			}
		}
		if c.Checks[i].RangeSize == 0 {
			c.Checks[i].RangeSize = 1000
		}
	}
}

var checkName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)

// Validate reports every invalid field, as checks[i].field.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, ch := range c.Checks {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("checks[%d]."+format, append([]any{i}, args...)...))
		}
		if !checkName.MatchString(ch.Name) {
			bad("name: %q: want 1 to 100 of a-z, A-Z, 0-9, '.', '_' or '-'", ch.Name)
		}
		if seen[ch.Name] {
			bad("name: %q is used twice", ch.Name)
		}
		seen[ch.Name] = true
		for _, se := range []struct {
			side string
			e    Endpoint
		}{{"source", ch.Source}, {"target", ch.Target}} {
			side, e := se.side, se.e
			if e.DSN != "" {
				if _, err := db.ParseDSN(e.DSN); err != nil {
					bad("%s.dsn: %v", side, err)
				}
			}
			if !tableRef.MatchString(e.Table) {
				bad("%s.table: %q is not a plain (optionally schema-qualified) table name", side, e.Table)
			}
			if !identifier.MatchString(e.Key) {
				bad("%s.key: %q is not a plain column name", side, e.Key)
			}
		}
		for j, col := range ch.Columns {
			if err := col.Validate(); err != nil {
				for _, e := range flatten(err) {
					bad("columns[%d].%s", j, e)
				}
			}
		}
		if ch.KeyFormat != "" && strings.Count(ch.KeyFormat, "%s") != 1 {
			bad("key_format: %q: want exactly one %%s", ch.KeyFormat)
		}
		if ch.RangeSize < 1 {
			bad("range_size: want at least 1, not %d", ch.RangeSize)
		}
	}
	return errors.Join(errs...)
}

// Check returns the check named name.
func (c Config) Check(name string) (Check, bool) {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch, true
		}
	}
	return Check{}, false
}

// Mapping is the check's mapping.
func (ch Check) Mapping() Mapping {
	return Mapping{Columns: ch.Columns, KeyFormat: ch.KeyFormat}
}

func flatten(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
