// Package filestore is the embedded control.Store: the state document and
// the audit log as files in the proxy's state dir, and the service
// registrations in memory, as one proxy that owns the dir needs them. The
// registrations are not written down: instances renew them every few
// seconds, so a restarted proxy has them back within a TTL.
package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/internal/private"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
)

// The files in the state dir.
const (
	StateFile = "state.json"
	AuditFile = "audit.jsonl"
	UsageFile = "usage.json"
)

// Store keeps the control state under a directory. It assumes that it is
// the directory's only writer: Changed never fires.
type Store struct {
	dir string

	// mu guards the state file and rev; auditMu the audit log.
	mu      sync.Mutex
	rev     int64
	revRead bool
	auditMu sync.Mutex

	regMu    sync.Mutex
	services map[string]map[string]time.Time // service → URL → expiry

	// usageMu guards usage, the traffic inventory, read from UsageFile on
	// first use.
	usageMu sync.Mutex
	usage   *control.UsageTable
}

var _ control.Store = (*Store)(nil)

// Open creates dir, private to its owner, if it is missing, and returns
// the store in it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, private.Dir); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &Store{dir: dir, services: map[string]map[string]time.Time{}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Load implements control.Store.
func (s *Store) Load(context.Context) (*control.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read()
	if err != nil {
		return nil, err
	}
	s.rev, s.revRead = 0, true
	if st != nil {
		s.rev = st.Revision
	}
	return st, nil
}

func (s *Store) read() (*control.State, error) {
	path := filepath.Join(s.dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read proxy state: %w", err)
	}
	var st control.State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("proxy state %s is corrupt (fix or remove it): %w", path, err)
	}
	return &st, nil
}

// Save implements control.Store. It writes the state file atomically (see
// private.WriteFileAtomic), so that a crash leaves the old state or the
// new, never half of one.
func (s *Store) Save(_ context.Context, st *control.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.revRead {
		cur, err := s.read()
		if err != nil {
			return err
		}
		s.rev, s.revRead = 0, true
		if cur != nil {
			s.rev = cur.Revision
		}
	}
	if st.Revision != s.rev {
		return &control.ConflictError{Base: st.Revision, Stored: s.rev}
	}
	next := *st
	next.Revision = s.rev + 1
	b, err := json.MarshalIndent(&next, "", "  ")
	if err != nil {
		return err
	}
	if err := private.WriteFileAtomic(filepath.Join(s.dir, StateFile), append(b, '\n')); err != nil {
		return err
	}
	s.rev = next.Revision
	st.Revision = next.Revision
	return nil
}

// Changed implements control.Store: nil, since the store has one writer.
func (s *Store) Changed() <-chan struct{} { return nil }

// AppendAudit implements control.Store.
func (s *Store) AppendAudit(_ context.Context, e api.AuditEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, AuditFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, private.File)
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

// Audit implements control.Store. The cursor is a byte offset in the
// audit log: a page holds up to q.Limit entries that start before it.
func (s *Store) Audit(_ context.Context, q control.AuditQuery) (control.AuditPage, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	f, err := os.Open(filepath.Join(s.dir, AuditFile))
	if errors.Is(err, os.ErrNotExist) {
		return control.AuditPage{Entries: []api.AuditEntry{}}, nil
	}
	if err != nil {
		return control.AuditPage{}, fmt.Errorf("read audit log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return control.AuditPage{}, fmt.Errorf("read audit log: %w", err)
	}
	entries, next, err := readAuditPage(f, fi.Size(), q.Module, q.Limit, q.Before)
	return control.AuditPage{Entries: entries, Next: next}, err
}

// readAuditPage reads a page of the audit log in r, size bytes long: see
// Audit. The cursor is the offset of the oldest line it looked at, so the
// pages join up; a torn or corrupt line is skipped.
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
	if module != "" && e.Module != module && !control.Touches(e, module) {
		return
	}
	*out = append(*out, e)
}

// Register implements control.Store.
func (s *Store) Register(_ context.Context, service, url string, ttl time.Duration) (bool, error) {
	now := time.Now()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	insts := s.services[service]
	if insts == nil {
		insts = map[string]time.Time{}
		s.services[service] = insts
	}
	exp, existed := insts[url]
	insts[url] = now.Add(ttl)
	return !existed || !exp.After(now), nil
}

// Deregister implements control.Store.
func (s *Store) Deregister(_ context.Context, service, url string) (bool, error) {
	now := time.Now()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	exp, ok := s.services[service][url]
	delete(s.services[service], url)
	if len(s.services[service]) == 0 {
		delete(s.services, service)
	}
	return ok && exp.After(now), nil
}

// Instances implements control.Store. It forgets the expired
// registrations it passes.
func (s *Store) Instances(context.Context) (map[string][]control.Instance, error) {
	now := time.Now()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	out := map[string][]control.Instance{}
	for name, insts := range s.services {
		for u, exp := range insts {
			if !exp.After(now) {
				delete(insts, u)
				continue
			}
			out[name] = append(out[name], control.Instance{URL: u, ExpiresAt: exp})
		}
		if len(insts) == 0 {
			delete(s.services, name)
		}
		sort.Slice(out[name], func(i, j int) bool { return out[name][i].URL < out[name][j].URL })
	}
	return out, nil
}

// usageTable returns the inventory, read from UsageFile on first use. It
// runs under s.usageMu.
func (s *Store) usageTable() (*control.UsageTable, error) {
	if s.usage != nil {
		return s.usage, nil
	}
	path := filepath.Join(s.dir, UsageFile)
	var rows []control.Usage
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read traffic inventory: %w", err)
	default:
		if err := json.Unmarshal(b, &rows); err != nil {
			return nil, fmt.Errorf("traffic inventory %s is corrupt (fix or remove it): %w", path, err)
		}
	}
	s.usage = control.NewUsageTable(rows)
	return s.usage, nil
}

// AddUsage implements control.Store. It writes the whole inventory
// atomically, as Save writes the state: the proxy adds its deltas every
// few seconds, and the inventory is bounded by control.MaxUsageTemplates a
// route.
func (s *Store) AddUsage(_ context.Context, deltas []control.Usage) error {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	cur, err := s.usageTable()
	if err != nil {
		return err
	}
	next := control.NewUsageTable(cur.Rows())
	for _, d := range deltas {
		next.Add(d)
	}
	b, err := json.Marshal(next.Rows())
	if err != nil {
		return err
	}
	if err := private.WriteFileAtomic(filepath.Join(s.dir, UsageFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write traffic inventory: %w", err)
	}
	s.usage = next
	return nil
}

// Usage implements control.Store.
func (s *Store) Usage(context.Context) ([]control.Usage, error) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	t, err := s.usageTable()
	if err != nil {
		return nil, err
	}
	return t.Rows(), nil
}

// Close implements control.Store; the store holds nothing open.
func (s *Store) Close() error { return nil }
