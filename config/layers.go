package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// field is one settable leaf of the config: a scalar, a duration, a string
// list or a *bool, addressed by its YAML path ("proxy.admin_addr").
type field struct {
	path   string
	env    string
	v      reflect.Value
	secret bool
}

var durationType = reflect.TypeOf(time.Duration(0))

// fields walks v (a pointer to a struct) and returns its settable leaves in
// declaration order. Struct fields recurse; maps and slices of structs are
// not leaves and are left to the YAML layer.
func fields(v reflect.Value) []field {
	var out []field
	walk(v.Elem(), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := yamlName(sf)
		if name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			walk(fv, path, out)
			continue
		}
		if !isLeaf(sf.Type) {
			continue
		}
		*out = append(*out, field{
			path:   path,
			env:    EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_")),
			v:      fv,
			secret: sf.Tag.Get("secret") == "true",
		})
	}
}

func yamlName(sf reflect.StructField) string {
	tag := sf.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return strings.ToLower(sf.Name)
	}
	return name
}

func isLeaf(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	case reflect.Pointer:
		return t.Elem().Kind() == reflect.Bool
	}
	return false
}

// set parses s into the field, in the same syntax for env and flags:
// durations as "5s", lists comma-separated, booleans as strconv reads them.
func (f field) set(s string) error {
	v := f.v
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 5s or 250ms, not %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		v.SetBool(b)
	case reflect.Pointer:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		v.Set(reflect.ValueOf(&b))
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer, not %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a non-negative integer, not %q", s)
		}
		v.SetUint(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, not %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		var list []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}

// applyEnv sets every field whose STRANGLER_* variable lookup finds.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	v := cfg.view()
	defer cfg.store(v)
	var errs []error
	for _, f := range fields(v) {
		s, ok := lookup(f.env)
		if !ok {
			continue
		}
		if err := f.set(s); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", f.path, f.env, err))
		}
	}
	return errors.Join(errs...)
}

// applyOverrides sets fields by YAML path, as flags do.
func applyOverrides(cfg *Config, overrides map[string]string) error {
	v := cfg.view()
	defer cfg.store(v)
	byPath := map[string]field{}
	for _, f := range fields(v) {
		byPath[f.path] = f
	}
	paths := make([]string, 0, len(overrides))
	for p := range overrides {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var errs []error
	for _, p := range paths {
		f, ok := byPath[p]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no such setting", p))
			continue
		}
		if err := f.set(overrides[p]); err != nil {
			errs = append(errs, fmt.Errorf("%s (from flag): %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// EnvNames lists every STRANGLER_* variable the config reads, with its path,
// for documentation.
func EnvNames() [][2]string {
	var out [][2]string
	for _, f := range fields((&Config{}).view()) {
		out = append(out, [2]string{f.env, f.path})
	}
	return out
}
