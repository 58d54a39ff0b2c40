package config

import (
	"fmt"
	"reflect"
)

// Section is a component's part of the config: SetDefaults fills its empty
// fields (dataDir anchors file defaults) and Validate reports every invalid
// field. The core sections are fields of Config; a program adds its own
// with Register.
type Section interface {
	SetDefaults(dataDir string)
	Validate() error
}

// extension is a section that a program registered.
type extension struct {
	// name is the section's YAML key; its environment variables start
	// STRANGLER_<NAME>_.
	name string
	// after is the key of the core field the section follows in the
	// printed config and in validation's order.
	after string
	typ   reflect.Type
}

// extensions lists the registered sections in registration order.
var extensions []extension

// Key is a registered section's handle: Of returns the section in a config.
type Key[T any] struct{ name string }

// Register adds a section of type T under the YAML key name, placed after
// the core key after (such as "log"), so that a program built on the
// toolkit configures its own components through the same layers: the key in
// the YAML file, STRANGLER_<NAME>_* variables and flags bound to its paths.
// It is called from init or main, before any config is loaded, and panics
// on a name that is taken or an after that is not a core key: both are
// programming errors.
func Register[T any, PT interface {
	*T
	Section
}](name, after string) Key[T] {
	core := coreKeys()
	if core[name] || lookupExtension(name) != nil {
		panic(fmt.Sprintf("config: section %q registered twice", name))
	}
	if !core[after] {
		panic(fmt.Sprintf("config: section %q: after %q is not a core key", name, after))
	}
	extensions = append(extensions, extension{name: name, after: after, typ: reflect.TypeFor[T]()})
	return Key[T]{name: name}
}

// Of returns c's section, with its zero value if c has not set it yet.
func (k Key[T]) Of(c *Config) *T {
	return any(c.extension(k.name)).(*T)
}

func lookupExtension(name string) *extension {
	for i := range extensions {
		if extensions[i].name == name {
			return &extensions[i]
		}
	}
	return nil
}

func coreKeys() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for i := 0; i < t.NumField(); i++ {
		if sf := t.Field(i); sf.IsExported() {
			keys[yamlName(sf)] = true
		}
	}
	return keys
}

// extension returns c's section registered as name, creating it on first
// use. It is always a pointer to the registered type.
func (c *Config) extension(name string) Section {
	if s, ok := c.extra[name]; ok {
		return s
	}
	e := lookupExtension(name)
	if e == nil {
		panic(fmt.Sprintf("config: no section %q is registered", name))
	}
	if c.extra == nil {
		c.extra = map[string]Section{}
	}
	s := reflect.New(e.typ).Interface().(Section)
	c.extra[name] = s
	return s
}

// slot is one field of a config's view: a core field of Config by index,
// or a registered section by name.
type slot struct {
	core int
	ext  string
}

// layout lists the view's fields and where each comes from: Config's
// exported fields in order, each followed by the sections registered after
// it.
func layout() ([]reflect.StructField, []slot) {
	t := reflect.TypeFor[Config]()
	var fields []reflect.StructField
	var slots []slot
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		fields = append(fields, sf)
		slots = append(slots, slot{core: i})
		for _, e := range extensions {
			if e.after == yamlName(sf) {
				fields = append(fields, reflect.StructField{
					Name: fmt.Sprintf("X%d", len(fields)),
					Type: e.typ,
					Tag:  reflect.StructTag(fmt.Sprintf("yaml:%q", e.name)),
				})
				slots = append(slots, slot{core: -1, ext: e.name})
			}
		}
	}
	return fields, slots
}

// view returns a pointer to a struct that holds copies of c's core fields
// and its registered sections in their places, under their YAML keys, so
// that the layers (file, environment, flags) and the printed config treat a
// registered section as they treat a core one. store copies it back.
func (c *Config) view() reflect.Value {
	fields, slots := layout()
	v := reflect.New(reflect.StructOf(fields))
	cv := reflect.ValueOf(c).Elem()
	for i, s := range slots {
		if s.core >= 0 {
			v.Elem().Field(i).Set(cv.Field(s.core))
		} else {
			v.Elem().Field(i).Set(reflect.ValueOf(c.extension(s.ext)).Elem())
		}
	}
	return v
}

// store copies a view that c.view returned back into c.
func (c *Config) store(v reflect.Value) {
	_, slots := layout()
	cv := reflect.ValueOf(c).Elem()
	for i, s := range slots {
		if s.core >= 0 {
			cv.Field(s.core).Set(v.Elem().Field(i))
		} else {
			reflect.ValueOf(c.extension(s.ext)).Elem().Set(v.Elem().Field(i))
		}
	}
}

// Schema returns the struct type of the whole config as the layers see it:
// Config's fields with the registered sections in their places, under
// their YAML keys, for tools and tests that walk every setting.
func Schema() reflect.Type {
	fields, _ := layout()
	return reflect.StructOf(fields)
}
