package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stranglerkit/strangler/db"
)

// Redacted replaces secret values in printed configs.
const Redacted = "[redacted]"

// YAML renders the effective config in declaration order, with secrets
// (fields tagged secret:"true") replaced and passwords in DSNs masked, so
// that it can be printed, logged or kept as a config file.
func (c *Config) YAML() ([]byte, error) {
	n, err := node(c.view().Elem(), false)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(n)
}

func node(v reflect.Value, secret bool) (*yaml.Node, error) {
	t := v.Type()
	if t.Kind() == reflect.Struct && t != durationType {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name := yamlName(sf)
			if !sf.IsExported() || name == "-" {
				continue
			}
			child, err := node(v.Field(i), sf.Tag.Get("secret") == "true")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if isDSN(name) && child.Kind == yaml.ScalarNode {
				child.Value = db.Redact(child.Value)
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, child)
		}
		return m, nil
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
		// Lists of sections (backfill jobs, verify checks) may hold DSNs
		// and secrets of their own.
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := 0; i < v.Len(); i++ {
			child, err := node(v.Index(i), secret)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			seq.Content = append(seq.Content, child)
		}
		return seq, nil
	}
	if secret {
		s := ""
		if !v.IsZero() {
			s = Redacted
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}, nil
	}
	if t == durationType {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: time.Duration(v.Int()).String()}, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return n, nil
}

func isDSN(name string) bool { return name == "dsn" || strings.HasSuffix(name, "_dsn") }
