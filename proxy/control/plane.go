package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// Plane is the control plane of one proxy: it computes the route table
// from its sources (a routes file with module overrides, or the table
// saved in the store, or an initial one), keeps it in the Store with the
// phases and audits every change, and hands each new table to a
// Publisher, the data plane. Its methods are safe for concurrent use.
type Plane struct {
	cfg   Config
	log   *slog.Logger
	store Store
	pub   Publisher

	reloads      *prometheus.CounterVec
	reloadFailed prometheus.Gauge

	// shared says the store has other writers (its Changed is not nil):
	// the plane then follows it (see WatchStore), starts without a table
	// while the store is unreachable, and refuses a stored table that is
	// empty or invalid instead of failing.
	shared bool
	follow followState

	// mu serializes changes: admin calls and reloads.
	mu sync.Mutex
	// ctl is the state behind the table: source, overrides and version.
	// Guarded by mu.
	ctl tableControl
	// compiled is the table ctl compiles to. Guarded by mu.
	compiled *routes.Table
	// phases are the modules' extraction phases. Guarded by mu.
	phases map[string]api.PhaseState
	// revision is the store revision ctl and phases were loaded or last
	// saved at. Guarded by mu.
	revision int64
	// seenVersion is the highest table version seen in the store, a
	// refused state's too, so that the next change's version is above
	// it. Guarded by mu.
	seenVersion int64
	// refusedRev is the stored revision last refused as invalid, so that
	// it is refused (and logged) once. Guarded by mu.
	refusedRev int64
}

// Publisher makes a compiled table serve: the data plane.
type Publisher interface {
	Publish(t *routes.Table, version int64)
}

// Config says where a Plane's table comes from.
type Config struct {
	// RoutesFile is the YAML route table to load and watch. If empty,
	// the table saved in the store, else Initial, else a catch-all route
	// to legacy.
	RoutesFile string
	// Legacy is the base URL of the default legacy backend.
	Legacy string
	// Timeout is the routes' timeout where the table sets none.
	Timeout time.Duration
	// Initial is the table to start on when there is neither a routes
	// file nor a saved table. If nil, a catch-all route to legacy.
	Initial *routes.Doc
	// StoreName names the store in errors about what it holds, such as
	// the state dir.
	StoreName string
	// PollInterval is how often WatchStore reads a shared store. If
	// zero, DefaultPollInterval.
	PollInterval time.Duration
	// StaleAfter is how long a replica of a shared store goes without
	// reading it before Status reports it degraded. If zero,
	// DefaultStaleAfter.
	StaleAfter time.Duration
}

// New loads the state from store, computes the table and publishes it
// through pub. It registers its metrics with reg and starts nothing: see
// WatchFile.
func New(cfg Config, store Store, pub Publisher, reg prometheus.Registerer, log *slog.Logger) (*Plane, error) {
	p := &Plane{cfg: cfg, log: log, store: store, pub: pub,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_routes_file_reloads_total",
			Help: "Reloads of the routes file, by result (ok, error).",
		}, []string{"result"}),
		reloadFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_proxy_routes_file_invalid",
			Help: "1 while the routes file on disk is invalid and the previous table keeps serving.",
		}),
	}
	if p.cfg.PollInterval <= 0 {
		p.cfg.PollInterval = DefaultPollInterval
	}
	if p.cfg.StaleAfter <= 0 {
		p.cfg.StaleAfter = DefaultStaleAfter
	}
	p.shared = store.Changed() != nil
	p.follow.init(p, reg)
	reg.MustRegister(p.reloads, p.reloadFailed)
	if err := p.loadInitial(); err != nil {
		return nil, err
	}
	return p, nil
}

// Audit reads a page of the audit log.
func (p *Plane) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	page, err := p.store.Audit(ctx, q)
	if err != nil {
		return AuditPage{}, &StoreError{Op: "read the audit log", Err: err}
	}
	return page, nil
}

// Table is the table's view for the admin API.
func (p *Plane) Table() api.Table {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := api.Table{Version: p.ctl.version, Source: p.ctl.source, UpdatedAt: p.ctl.updatedAt, UpdatedBy: p.ctl.updatedBy, Table: p.ctl.effective,
		Warnings: warnings(p.compiled), DormantOverrides: p.ctl.dormantOverrides()}
	if t.Source == sourceFile {
		t.File = p.cfg.RoutesFile
	}
	return t
}

// Override is the module's override on top of the routes file, or nil.
func (p *Plane) Override(module string) *api.ModeOverride {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, ok := p.ctl.overrides[module]; ok {
		return &api.ModeOverride{Mode: o.Mode, Weight: o.Weight}
	}
	return nil
}

// Table sources.
const (
	sourceFile    = "file"
	sourceState   = "state"
	sourceDefault = "default"
)

// tableControl is what the table is computed from. Guarded by Plane.mu.
type tableControl struct {
	source    string
	base      *routes.Doc
	overrides map[string]Override
	effective *routes.Doc
	version   int64
	updatedAt time.Time
	updatedBy string
	// fileRaw is the routes file's last content, to skip reloads that
	// change nothing.
	fileRaw []byte
}

// Errors of a change, that the admin API maps to statuses.
var (
	// ErrModuleNotFound is a change to a module the table does not have.
	ErrModuleNotFound = errors.New("module not found")
	// ErrFileManaged is a replacement of a table that a routes file holds.
	ErrFileManaged = errors.New("the table is managed by a routes file")
	// ErrVersion is a change made against an older table version, or
	// that another writer of the store beat.
	ErrVersion = errors.New("the table version does not match")
)

// PersistError is a change that the store could not save: the server's
// condition, not the client's. The admin API answers 507 when the disk is
// full and 503 otherwise, without the path. A save that lost a race
// against another writer is not one: see save.
type PersistError struct{ Err error }

func (e *PersistError) Error() string { return "persist the proxy state: " + e.Err.Error() }

func (e *PersistError) Unwrap() error { return e.Err }

// StoreError is a read or write of the registry or the audit log that the
// control store failed: the server's condition, not the client's. The
// admin API answers 503 store-unavailable, without the store's message.
type StoreError struct {
	// Op says what was done, as in "read the audit log".
	Op  string
	Err error
}

func (e *StoreError) Error() string { return "control store: " + e.Op + ": " + e.Err.Error() }

func (e *StoreError) Unwrap() error { return e.Err }

// ChangeError is a change that is not valid, in Field; the admin API
// answers 422.
type ChangeError struct {
	Field, Msg string
}

func (e *ChangeError) Error() string { return e.Field + ": " + e.Msg }

// defaultDoc is the table used when there is neither a routes file nor
// persisted state: everything to legacy.
func defaultDoc() *routes.Doc {
	return &routes.Doc{Modules: []routes.Module{{
		Name:   "default",
		Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}},
	}}}
}

func (p *Plane) compileOptions() routes.Options {
	return routes.Options{Backends: map[string]routes.Backend{routes.DefaultLegacy: {URLs: []string{p.cfg.Legacy}}}}
}

// compile applies the proxy's defaults to a document and compiles it.
func (p *Plane) compile(doc *routes.Doc) (*routes.Table, error) {
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
func (p *Plane) loadInitial() error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	saved, err := p.store.Load(ctx)
	cancel()
	p.follow.read(err)
	if err != nil {
		if p.shared {
			p.log.Warn("control store unreachable at start: the proxy serves no table (503 no-table) and is not ready until it reads one", "error", err)
			return nil
		}
		return err
	}
	if p.shared && saved != nil && p.cfg.RoutesFile == "" {
		_ = p.syncLocked(saved) // a refused state is logged and counted there
		return nil
	}
	if err := p.loadFirst(saved); err != nil {
		if !p.shared || !errors.Is(err, ErrConflict) {
			return err
		}
		// Another replica saved the first state meanwhile: take it.
		return p.refreshLocked()
	}
	return nil
}

// loadFirst builds the first table from saved (nil when the store holds
// none) and the routes file or the initial table, and saves it when it
// is new.
func (p *Plane) loadFirst(saved *State) error {
	c := tableControl{overrides: map[string]Override{}, version: 1}
	if saved != nil {
		p.revision = saved.Revision
		c = stateControl(saved)
		p.phases = saved.Phases
	}
	var dropped, dormant []string
	switch {
	case p.cfg.RoutesFile != "":
		var err error
		if dropped, dormant, err = p.fromFile(&c); err != nil {
			return err
		}
	case saved != nil && saved.Table != nil:
		c.source, c.base, c.effective = sourceState, saved.Table, saved.Table
		c.overrides = map[string]Override{}
	case p.cfg.Initial != nil:
		c.source, c.base, c.effective = sourceState, p.cfg.Initial.Clone(), p.cfg.Initial.Clone()
	default:
		c.source, c.base, c.effective = sourceDefault, defaultDoc(), defaultDoc()
	}
	t, err := p.compile(c.effective)
	if err != nil {
		if c.source == sourceFile {
			return fmt.Errorf("routes file %q: %w", p.cfg.RoutesFile, err)
		}
		return fmt.Errorf("persisted route table in %s: %w", p.cfg.StoreName, err)
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
		if err := p.save(); err != nil {
			return err
		}
		p.audit(api.AuditEntry{Actor: "initial", Action: "load", Version: c.version,
			Detail: "initial route table", After: summary(c.effective)})
	}
	if changed || (saved == nil && c.source == sourceFile) {
		if err := p.save(); err != nil {
			return err
		}
		p.audit(api.AuditEntry{Actor: c.updatedBy, Action: "load", Version: c.version,
			Detail: fmt.Sprintf("loaded routes file %s at start", p.cfg.RoutesFile), After: summary(c.effective)})
	}
	p.logOverrides(dormant, nil, dropped)
	p.pub.Publish(t, c.version)
	p.compiled = t
	p.seenVersion = max(p.seenVersion, c.version)
	p.follow.revision.Set(float64(p.revision))
	return nil
}

// stateControl is the table control of a stored state, before its
// source is set.
func stateControl(st *State) tableControl {
	c := tableControl{overrides: map[string]Override{}, version: st.Version, updatedAt: st.UpdatedAt, updatedBy: st.UpdatedBy}
	for k, v := range st.Overrides {
		c.overrides[k] = v
	}
	return c
}

// fromFile makes the routes file c's source, with c's overrides applied,
// and drops the overrides that the file's edits replaced.
func (p *Plane) fromFile(c *tableControl) (dropped, dormant []string, err error) {
	raw, doc, err := readRoutesFile(p.cfg.RoutesFile)
	if err != nil {
		return nil, nil, err
	}
	c.source, c.base, c.fileRaw = sourceFile, doc, raw
	c.effective, dropped, dormant = applyOverrides(doc, c.overrides)
	for _, m := range dropped {
		delete(c.overrides, m)
	}
	return dropped, dormant, nil
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
func applyOverrides(base *routes.Doc, ov map[string]Override) (doc *routes.Doc, dropped, dormant []string) {
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
func (c *tableControl) dormantOverrides() map[string]api.ModeOverride {
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
func (p *Plane) logOverrides(dormant, restored, dropped []string) {
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

// save persists the control state, based on the revision it was loaded
// or last saved at. It runs under p.mu. A save that another writer beat
// is ErrVersion, as for a change made against an old table version; any
// other failure is a *persistError.
func (p *Plane) save() error {
	c := &p.ctl
	st := &State{Revision: p.revision, Version: c.version, UpdatedAt: c.updatedAt, UpdatedBy: c.updatedBy, Table: c.effective}
	if len(c.overrides) > 0 {
		st.Overrides = c.overrides
	}
	if len(p.phases) > 0 {
		st.Phases = p.phases
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := p.store.Save(ctx, st); err != nil {
		if errors.Is(err, ErrConflict) {
			p.follow.read(nil)
			return fmt.Errorf("%w: %w", ErrVersion, err)
		}
		p.follow.read(err)
		return &PersistError{Err: err}
	}
	p.follow.read(nil)
	p.revision = st.Revision
	p.seenVersion = max(p.seenVersion, st.Version)
	p.follow.revision.Set(float64(p.revision))
	return nil
}

// WarnNoCatchAll is the warning about a table without a catch-all route,
// in the log and the admin API's answer.
const WarnNoCatchAll = "no route takes prefix / without conditions, so requests outside the table's routes get 404 no-route"

// warnings are the table's valid but likely mistaken parts.
func warnings(t *routes.Table) []string {
	if t == nil || t.CatchAll() {
		return nil
	}
	return []string{WarnNoCatchAll}
}

// commit validates and applies a new control state: compile, persist,
// publish, audit. It runs under p.mu.
func (p *Plane) commit(next tableControl, entry api.AuditEntry) error {
	t, err := p.compile(next.effective)
	if err != nil {
		return err
	}
	next.version = max(p.ctl.version, p.seenVersion) + 1
	next.updatedAt = time.Now().UTC()
	next.updatedBy = entry.Actor
	prev := p.ctl
	p.ctl = next
	if err := p.save(); err != nil {
		p.ctl = prev
		return err
	}
	p.pub.Publish(t, next.version)
	p.compiled = t
	entry.Version = next.version
	entry.Time = next.updatedAt
	p.audit(entry)
	p.log.Info("route table changed", "version", next.version, "action", entry.Action, "module", entry.Module, "actor", entry.Actor)
	return nil
}

func (p *Plane) audit(e api.AuditEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := p.store.AppendAudit(context.Background(), e); err != nil {
		p.log.Error("audit log write failed", "error", err)
	}
}

// SetModule changes a module's mode: shadow, canary with a weight, flip
// (extracted) or rollback (legacy). ifVersion, when not zero, must be the
// current table version, as for ReplaceTable.
func (p *Plane) SetModule(actor, module string, mode routes.Mode, weight int, ifVersion int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retrying(func() error { return p.setModule(actor, module, mode, weight, ifVersion) })
}

func (p *Plane) setModule(actor, module string, mode routes.Mode, weight int, ifVersion int64) error {
	if p.compiled == nil {
		return &PersistError{Err: ErrNoTable}
	}
	cur := p.ctl.effective.Module(module)
	if cur == nil {
		return ErrModuleNotFound
	}
	if err := p.checkVersion(ifVersion); err != nil {
		return err
	}
	if mode != routes.ModeCanary {
		weight = 0
	}
	if weight < 0 || weight > 100 {
		return &ChangeError{Field: "weight", Msg: fmt.Sprintf("must be 0 to 100, not %d", weight)}
	}
	if mode != routes.ModeLegacy && cur.Candidate == "" {
		return &ChangeError{Field: "mode", Msg: fmt.Sprintf("module %s has no candidate backend, so it can only serve from legacy", module)}
	}
	before := modeJSON(effectiveMode(cur.Mode), cur.Weight)
	next := p.ctl
	next.overrides = map[string]Override{}
	for k, v := range p.ctl.overrides {
		next.overrides[k] = v
	}
	if next.source == sourceFile {
		bm := next.base.Module(module)
		next.overrides[module] = Override{Mode: mode, Weight: weight, BaseMode: effectiveMode(bm.Mode), BaseWeight: bm.Weight}
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
func (p *Plane) ReplaceTable(actor string, doc *routes.Doc, ifVersion int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retrying(func() error { return p.replaceTable(actor, doc, ifVersion) })
}

func (p *Plane) replaceTable(actor string, doc *routes.Doc, ifVersion int64) error {
	if p.compiled == nil {
		return &PersistError{Err: ErrNoTable}
	}
	if p.ctl.source == sourceFile {
		return ErrFileManaged
	}
	if err := p.checkVersion(ifVersion); err != nil {
		return err
	}
	next := p.ctl
	next.source, next.base, next.effective = sourceState, doc, doc
	next.overrides = map[string]Override{}
	return p.commit(next, api.AuditEntry{Actor: actor, Action: "replace", Before: summary(p.ctl.effective), After: summary(doc)})
}

// Reload reads the routes file again. An invalid file is refused and
// the table that serves stays.
func (p *Plane) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw, doc, err := readRoutesFile(p.cfg.RoutesFile)
	if err == nil && bytes.Equal(raw, p.ctl.fileRaw) {
		// Back to the content that serves, after an invalid edit say.
		p.reloadFailed.Set(0)
		return nil
	}
	if err == nil {
		next := p.ctl
		next.overrides = map[string]Override{}
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
			p.reloads.WithLabelValues("ok").Inc()
			p.reloadFailed.Set(0)
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
		p.reloads.WithLabelValues("error").Inc()
		p.reloadFailed.Set(1)
		p.log.Error("routes file refused; the previous table keeps serving", "file", p.cfg.RoutesFile, "error", err)
		return err
	}
	p.reloads.WithLabelValues("ok").Inc()
	p.reloadFailed.Set(0)
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
