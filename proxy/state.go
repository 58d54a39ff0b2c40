package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/internal/private"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Table sources.
const (
	sourceFile    = "file"
	sourceState   = "state"
	sourceDefault = "default"
)

// control is what the table is computed from. Guarded by Proxy.mu.
type control struct {
	source    string
	base      *routes.Doc
	overrides map[string]override
	effective *routes.Doc
	version   int64
	updatedAt time.Time
	updatedBy string
	// fileRaw is the routes file's last content, to skip reloads that
	// change nothing.
	fileRaw []byte
}

// override is a module-wide mode set through the admin API on top of a
// routes file. It records the file's setting when it was made: a later
// edit of that setting in the file wins over the override.
type override struct {
	Mode       routes.Mode `json:"mode"`
	Weight     int         `json:"weight"`
	BaseMode   routes.Mode `json:"base_mode"`
	BaseWeight int         `json:"base_weight"`
}

// persisted is the state file.
type persisted struct {
	Version   int64               `json:"version"`
	UpdatedAt time.Time           `json:"updated_at"`
	UpdatedBy string              `json:"updated_by"`
	Table     *routes.Doc         `json:"table,omitempty"`
	Overrides map[string]override `json:"overrides,omitempty"`
	// Phases are the modules' extraction phases (phases.go).
	Phases map[string]api.PhaseState `json:"phases,omitempty"`
}

// Errors the admin API maps to statuses.
var (
	errModuleNotFound = errors.New("module not found")
	errFileManaged    = errors.New("the table is managed by a routes file")
	errVersion        = errors.New("the table version does not match")
)

// persistError is a change that could not be saved in the state dir: the
// server's condition, not the client's. The admin API answers 507 when the
// disk is full and 503 otherwise, without the path.
type persistError struct{ err error }

func (e *persistError) Error() string { return "persist the proxy state: " + e.err.Error() }

func (e *persistError) Unwrap() error { return e.err }

// changeError is a change that is not valid; the admin API answers 422.
type changeError struct {
	field, msg string
}

func (e *changeError) Error() string { return e.field + ": " + e.msg }

// defaultDoc is the table used when there is neither a routes file nor
// persisted state: everything to legacy.
func defaultDoc() *routes.Doc {
	return &routes.Doc{Modules: []routes.Module{{
		Name:   "default",
		Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}},
	}}}
}

func (p *Proxy) compileOptions() routes.Options {
	return routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{p.cfg.Legacy}}}}
}

// compile applies the proxy's defaults to a document and compiles it.
func (p *Proxy) compile(doc *routes.Doc) (*routes.Table, error) {
	t, err := routes.Compile(doc, p.compileOptions())
	if err != nil {
		return nil, err
	}
	for _, r := range t.Routes {
		if r.Timeout == routes.DefaultTimeout && !explicitTimeout(doc, r) {
			r.Timeout = p.cfg.Timeout
		}
	}
	return t, nil
}

func explicitTimeout(doc *routes.Doc, r *routes.Route) bool {
	m := doc.Module(r.Module)
	if m == nil {
		return false
	}
	if m.Timeout != 0 {
		return true
	}
	for _, rd := range m.Routes {
		if rd.ID == r.ID {
			return rd.Timeout != 0
		}
	}
	return false
}

// loadInitial builds the first table: the routes file with the persisted
// module overrides, else the persisted table, else the default.
func (p *Proxy) loadInitial() error {
	saved, err := p.store.load()
	if err != nil {
		return err
	}
	c := control{overrides: map[string]override{}, version: 1}
	if saved != nil {
		c.version = saved.Version
		c.updatedAt, c.updatedBy = saved.UpdatedAt, saved.UpdatedBy
		for k, v := range saved.Overrides {
			c.overrides[k] = v
		}
		p.phases = saved.Phases
	}
	var dropped, dormant []string
	switch {
	case p.cfg.RoutesFile != "":
		raw, doc, err := readRoutesFile(p.cfg.RoutesFile)
		if err != nil {
			return err
		}
		c.source, c.base, c.fileRaw = sourceFile, doc, raw
		c.effective, dropped, dormant = applyOverrides(doc, c.overrides)
		for _, m := range dropped {
			delete(c.overrides, m)
		}
	case saved != nil && saved.Table != nil:
		c.source, c.base, c.effective = sourceState, saved.Table, saved.Table
		c.overrides = map[string]override{}
	case p.initial != nil:
		c.source, c.base, c.effective = sourceState, p.initial.Clone(), p.initial.Clone()
	default:
		c.source, c.base, c.effective = sourceDefault, defaultDoc(), defaultDoc()
	}
	t, err := p.compile(c.effective)
	if err != nil {
		if c.source == sourceFile {
			return fmt.Errorf("routes file %q: %w", p.cfg.RoutesFile, err)
		}
		return fmt.Errorf("persisted route table in %s: %w", p.store.dir, err)
	}
	changed := saved != nil && c.source == sourceFile && !reflect.DeepEqual(saved.Table, c.effective)
	if changed {
		c.version++
		c.updatedAt, c.updatedBy = time.Now().UTC(), "file:"+p.cfg.RoutesFile
	}
	if c.updatedAt.IsZero() {
		c.updatedAt, c.updatedBy = time.Now().UTC(), c.source
		if c.source == sourceFile {
			c.updatedBy = "file:" + p.cfg.RoutesFile
		}
	}
	p.ctl = c
	if saved == nil && c.source == sourceState {
		// The embedder's initial table: persist it so that later changes
		// build on it and a restart keeps it.
		if err := p.store.save(p.persisted()); err != nil {
			return err
		}
		p.audit(api.AuditEntry{Actor: "initial", Action: "load", Version: c.version,
			Detail: "initial route table", After: summary(c.effective)})
	}
	if changed || (saved == nil && c.source == sourceFile) {
		if err := p.store.save(p.persisted()); err != nil {
			return err
		}
		p.audit(api.AuditEntry{Actor: c.updatedBy, Action: "load", Version: c.version,
			Detail: fmt.Sprintf("loaded routes file %s at start", p.cfg.RoutesFile), After: summary(c.effective)})
	}
	p.logOverrides(dormant, nil, dropped)
	p.publish(t, c.version)
	return nil
}

func readRoutesFile(path string) ([]byte, *routes.Doc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read routes file: %w", err)
	}
	doc, err := routes.Parse(raw)
	if err != nil {
		return raw, nil, fmt.Errorf("routes file %q: %w", path, err)
	}
	return raw, doc, nil
}

// applyOverrides returns base with the module overrides applied, the
// modules whose override no longer applies because the file changed the
// module's own setting, and the modules whose override is dormant because
// the file does not have them. A dormant override is kept: a file written
// briefly without a module (an editor's save, a bad merge) must not lose
// the operator's flip. It applies again when the module returns with the
// setting it had.
func applyOverrides(base *routes.Doc, ov map[string]override) (doc *routes.Doc, dropped, dormant []string) {
	if len(ov) == 0 {
		return base, nil, nil
	}
	doc = base.Clone()
	names := make([]string, 0, len(ov))
	for n := range ov {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		o := ov[name]
		m := doc.Module(name)
		switch {
		case m == nil:
			dormant = append(dormant, name)
		case effectiveMode(m.Mode) != o.BaseMode || m.Weight != o.BaseWeight:
			dropped = append(dropped, name)
		default:
			setModuleMode(m, o.Mode, o.Weight)
		}
	}
	return doc, dropped, dormant
}

// dormantOverrides lists the overrides of modules the routes file does not
// have, by module.
func (c *control) dormantOverrides() map[string]api.ModeOverride {
	if c.source != sourceFile {
		return nil
	}
	var out map[string]api.ModeOverride
	for name, o := range c.overrides {
		if c.base.Module(name) == nil {
			if out == nil {
				out = map[string]api.ModeOverride{}
			}
			out[name] = api.ModeOverride{Mode: o.Mode, Weight: o.Weight}
		}
	}
	return out
}

// newlyDormant are the dormant overrides that were not dormant before,
// so that each is logged once, when its module leaves the file.
func newlyDormant(dormant []string, before map[string]api.ModeOverride) []string {
	var out []string
	for _, m := range dormant {
		if _, ok := before[m]; !ok {
			out = append(out, m)
		}
	}
	return out
}

// logOverrides logs the overrides that a routes file made dormant, brought
// back or dropped.
func (p *Proxy) logOverrides(dormant, restored, dropped []string) {
	for _, m := range dormant {
		o := p.ctl.overrides[m]
		p.log.Warn("module override dormant: the routes file does not have the module; the override applies again when the module returns with the same mode",
			"module", m, "mode", o.Mode, "weight", o.Weight)
	}
	for _, m := range restored {
		p.log.Info("module override applies again: the module is back in the routes file", "module", m)
	}
	for _, m := range dropped {
		p.log.Info("module override dropped: the routes file changed the module's mode", "module", m)
	}
}

func effectiveMode(m routes.Mode) routes.Mode {
	if m == "" {
		return routes.ModeLegacy
	}
	return m
}

// setModuleMode sets a module's mode and clears its routes' own modes, so
// that a module-wide change moves every route of the module.
func setModuleMode(m *routes.Module, mode routes.Mode, weight int) {
	m.Mode, m.Weight = mode, weight
	for i := range m.Routes {
		m.Routes[i].Mode = ""
		m.Routes[i].Weight = nil
	}
}

func (p *Proxy) persisted() *persisted {
	c := &p.ctl
	ps := &persisted{Version: c.version, UpdatedAt: c.updatedAt, UpdatedBy: c.updatedBy, Table: c.effective}
	if len(c.overrides) > 0 {
		ps.Overrides = c.overrides
	}
	if len(p.phases) > 0 {
		ps.Phases = p.phases
	}
	return ps
}

// publish binds a compiled table to backends and makes it serve. Requests
// in flight finish on the table they loaded.
func (p *Proxy) publish(t *routes.Table, version int64) {
	live := map[string]*backend{}
	old := p.table.Load()
	if old != nil {
		live = old.backends
	}
	rt, retired := p.buildTable(t, version, live)
	p.table.Store(rt)
	for _, b := range retired {
		b.stop()
	}
	if old != nil {
		p.forget(old, rt)
	}
	p.syncServices()
	p.m.tableVersion.Set(float64(version))
	if t.CatchAll() {
		p.m.catchAll.Set(1)
	} else {
		p.m.catchAll.Set(0)
		p.log.Warn("route table has no catch-all route: "+warnNoCatchAll, "version", version)
	}
}

// warnNoCatchAll is the warning about a table without a catch-all route,
// in the log and the admin API's answer.
const warnNoCatchAll = "no route takes prefix / without conditions, so requests outside the table's routes get 404 no-route"

// warnings are the table's valid but likely mistaken parts.
func warnings(t *runtimeTable) []string {
	if t == nil || t.t.CatchAll() {
		return nil
	}
	return []string{warnNoCatchAll}
}

// commit validates and applies a new control state: compile, persist,
// publish, audit. It runs under p.mu.
func (p *Proxy) commit(next control, entry api.AuditEntry) error {
	t, err := p.compile(next.effective)
	if err != nil {
		return err
	}
	next.version = p.ctl.version + 1
	next.updatedAt = time.Now().UTC()
	next.updatedBy = entry.Actor
	prev := p.ctl
	p.ctl = next
	if err := p.store.save(p.persisted()); err != nil {
		p.ctl = prev
		return &persistError{err}
	}
	p.publish(t, next.version)
	entry.Version = next.version
	entry.Time = next.updatedAt
	p.audit(entry)
	p.log.Info("route table changed", "version", next.version, "action", entry.Action, "module", entry.Module, "actor", entry.Actor)
	return nil
}

func (p *Proxy) audit(e api.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := p.store.appendAudit(e); err != nil {
		p.log.Error("audit log write failed", "error", err)
	}
}

// SetModule changes a module's mode: shadow, canary with a weight, flip
// (extracted) or rollback (legacy). ifVersion, when not zero, must be the
// current table version, as for ReplaceTable.
func (p *Proxy) SetModule(actor, module string, mode routes.Mode, weight int, ifVersion int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.ctl.effective.Module(module)
	if cur == nil {
		return errModuleNotFound
	}
	if ifVersion != 0 && ifVersion != p.ctl.version {
		return errVersion
	}
	if mode != routes.ModeCanary {
		weight = 0
	}
	if weight < 0 || weight > 100 {
		return &changeError{"weight", fmt.Sprintf("must be 0 to 100, not %d", weight)}
	}
	if mode != routes.ModeLegacy && cur.Candidate == "" {
		return &changeError{"mode", fmt.Sprintf("module %s has no candidate backend, so it can only serve from legacy", module)}
	}
	before := modeJSON(effectiveMode(cur.Mode), cur.Weight)
	next := p.ctl
	next.overrides = map[string]override{}
	for k, v := range p.ctl.overrides {
		next.overrides[k] = v
	}
	if next.source == sourceFile {
		bm := next.base.Module(module)
		next.overrides[module] = override{Mode: mode, Weight: weight, BaseMode: effectiveMode(bm.Mode), BaseWeight: bm.Weight}
		next.effective, _, _ = applyOverrides(next.base, next.overrides)
	} else {
		doc := p.ctl.effective.Clone()
		setModuleMode(doc.Module(module), mode, weight)
		next.source, next.base, next.effective = sourceState, doc, doc
	}
	return p.commit(next, api.AuditEntry{Actor: actor, Action: actionFor(mode), Module: module,
		Before: before, After: modeJSON(mode, weight)})
}

func actionFor(mode routes.Mode) string {
	switch mode {
	case routes.ModeShadow:
		return "shadow"
	case routes.ModeCanary:
		return "canary"
	case routes.ModeExtracted:
		return "flip"
	}
	return "rollback"
}

func modeJSON(mode routes.Mode, weight int) json.RawMessage {
	b, _ := json.Marshal(api.ModeOverride{Mode: mode, Weight: weight})
	return b
}

// ReplaceTable replaces the whole table. ifVersion, when not zero, must be
// the current version (optimistic concurrency). A table that comes from a
// routes file cannot be replaced through the API.
func (p *Proxy) ReplaceTable(actor string, doc *routes.Doc, ifVersion int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctl.source == sourceFile {
		return errFileManaged
	}
	if ifVersion != 0 && ifVersion != p.ctl.version {
		return errVersion
	}
	next := p.ctl
	next.source, next.base, next.effective = sourceState, doc, doc
	next.overrides = map[string]override{}
	return p.commit(next, api.AuditEntry{Actor: actor, Action: "replace", Before: summary(p.ctl.effective), After: summary(doc)})
}

// reloadFile reads the routes file again. An invalid file is refused and
// the table that serves stays.
func (p *Proxy) reloadFile() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw, doc, err := readRoutesFile(p.cfg.RoutesFile)
	if err == nil && bytes.Equal(raw, p.ctl.fileRaw) {
		// Back to the content that serves, after an invalid edit say.
		p.m.reloadFailed.Set(0)
		return nil
	}
	if err == nil {
		next := p.ctl
		next.overrides = map[string]override{}
		for k, v := range p.ctl.overrides {
			next.overrides[k] = v
		}
		wasDormant := p.ctl.dormantOverrides()
		var dropped, dormant, restored []string
		next.base, next.fileRaw = doc, raw
		next.effective, dropped, dormant = applyOverrides(doc, next.overrides)
		for _, m := range dropped {
			delete(next.overrides, m)
		}
		for m := range wasDormant {
			if _, ok := next.overrides[m]; ok && doc.Module(m) != nil {
				restored = append(restored, m)
			}
		}
		sort.Strings(restored)
		if reflect.DeepEqual(next.effective, p.ctl.effective) && len(dropped) == 0 {
			// Comments or formatting: nothing to publish.
			p.ctl.base, p.ctl.fileRaw = doc, raw
			p.m.reloads.WithLabelValues("ok").Inc()
			p.m.reloadFailed.Set(0)
			return nil
		}
		detail := "routes file changed"
		if len(dropped) > 0 {
			detail += fmt.Sprintf("; overrides dropped for %v because the file changed their mode", dropped)
		}
		if len(dormant) > 0 {
			detail += fmt.Sprintf("; overrides dormant for %v because the file does not have them", dormant)
		}
		if len(restored) > 0 {
			detail += fmt.Sprintf("; overrides apply again for %v", restored)
		}
		err = p.commit(next, api.AuditEntry{Actor: "file:" + p.cfg.RoutesFile, Action: "reload",
			Before: summary(p.ctl.effective), After: summary(next.effective), Detail: detail})
		if err != nil {
			err = fmt.Errorf("routes file %q: %w", p.cfg.RoutesFile, err)
		} else {
			p.logOverrides(newlyDormant(dormant, wasDormant), restored, dropped)
		}
	}
	if err != nil {
		p.m.reloads.WithLabelValues("error").Inc()
		p.m.reloadFailed.Set(1)
		p.log.Error("routes file refused; the previous table keeps serving", "file", p.cfg.RoutesFile, "error", err)
		return err
	}
	p.m.reloads.WithLabelValues("ok").Inc()
	p.m.reloadFailed.Set(0)
	return nil
}

// moduleSummary is the audit's view of a table: each module's mode and
// weight and route count.
type moduleSummary struct {
	Mode      routes.Mode `json:"mode"`
	Weight    int         `json:"weight,omitempty"`
	Candidate string      `json:"candidate,omitempty"`
	Routes    []string    `json:"routes"`
}

func summary(d *routes.Doc) json.RawMessage {
	out := map[string]moduleSummary{}
	for _, m := range d.Modules {
		s := moduleSummary{Mode: effectiveMode(m.Mode), Weight: m.Weight, Candidate: m.Candidate, Routes: []string{}}
		for _, r := range m.Routes {
			s.Routes = append(s.Routes, r.ID)
		}
		out[m.Name] = s
	}
	b, _ := json.Marshal(out)
	return b
}

// store keeps the table state and the audit log under the state dir.
type store struct {
	dir string
	mu  sync.Mutex
}

const (
	stateFile = "state.json"
	auditFile = "audit.jsonl"
)

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, private.Dir); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) load() (*persisted, error) {
	path := filepath.Join(s.dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read proxy state: %w", err)
	}
	var ps persisted
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("proxy state %s is corrupt (fix or remove it): %w", path, err)
	}
	return &ps, nil
}

// save writes the state atomically: a temporary file, fsync, rename, and
// fsync of the directory, so that a crash leaves the old or the new state,
// never half of one.
func (s *store) save(ps *persisted) error {
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, stateFile), append(b, '\n'), private.File)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (s *store) appendAudit(e api.AuditEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, auditFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, private.File)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		// A full disk may take part of the line: cut it off, or the next
		// entry would continue the torn line and be lost with it.
		_ = f.Truncate(fi.Size())
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// A page of the audit log is read backwards from its cursor in chunks, and
// stops after auditScanBudget bytes once it holds an entry or has passed
// one, so that no request reads the whole file however large it grows.
const (
	auditChunk      = 64 << 10
	auditScanBudget = 1 << 20
)

// readAudit returns a page of the audit log, newest first, for one module
// or all: up to limit entries that start before the byte offset before (0:
// the end of the file), and the cursor of the next page (0: none).
func (s *store) readAudit(module string, limit int, before int64) ([]api.AuditEntry, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.Open(filepath.Join(s.dir, auditFile))
	if errors.Is(err, os.ErrNotExist) {
		return []api.AuditEntry{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read audit log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read audit log: %w", err)
	}
	return readAuditPage(f, fi.Size(), module, limit, before)
}

// readAuditPage reads a page of the audit log in r, size bytes long: see
// readAudit. The cursor is the offset of the oldest line it looked at, so
// the pages join up; a torn or corrupt line is skipped.
func readAuditPage(r io.ReaderAt, size int64, module string, limit int, before int64) ([]api.AuditEntry, int64, error) {
	end := size
	if before > 0 && before < size {
		end = before
	}
	out := []api.AuditEntry{}
	boundary := end // every line from here to end is handled
	pos := end      // bytes from pos on have been read
	var carry []byte
	scanned := int64(0)
	for boundary > 0 && len(out) < limit && (scanned < auditScanBudget || boundary == end) {
		if pos == 0 {
			// The file's first line has no newline before it.
			handleAuditLine(bytes.TrimSuffix(carry, []byte("\n")), module, &out)
			boundary, carry = 0, nil
			break
		}
		n := min(int64(auditChunk), pos)
		buf := make([]byte, n, n+int64(len(carry)))
		if _, err := r.ReadAt(buf, pos-n); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("read audit log: %w", err)
		}
		pos -= n
		scanned += n
		data := append(buf, carry...)
		for len(out) < limit {
			line := bytes.TrimSuffix(data, []byte("\n"))
			i := bytes.LastIndexByte(line, '\n')
			if i < 0 {
				break
			}
			handleAuditLine(line[i+1:], module, &out)
			data = data[:i+1]
			boundary = pos + int64(i+1)
		}
		carry = data
	}
	return out, boundary, nil
}

// handleAuditLine adds the entry of one line to out if it is for module.
func handleAuditLine(line []byte, module string, out *[]api.AuditEntry) {
	if len(line) == 0 {
		return
	}
	var e api.AuditEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return // a torn last line after a crash
	}
	if module != "" && e.Module != module && !touches(e, module) {
		return
	}
	*out = append(*out, e)
}

// touches reports whether a table-wide entry changed the module.
func touches(e api.AuditEntry, module string) bool {
	if e.Module != "" {
		return false
	}
	var before, after map[string]json.RawMessage
	_ = json.Unmarshal(e.Before, &before)
	_ = json.Unmarshal(e.After, &after)
	return !bytes.Equal(before[module], after[module])
}
