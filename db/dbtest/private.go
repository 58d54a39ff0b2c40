package dbtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// Private is a Postgres cluster of the test's own: initdb'd into a temp
// dir, on a free loopback port, with its unix socket in that dir. A test
// stops, restarts or kills it freely, which it must never do to the shared
// server of STRANGLER_TEST_POSTGRES_DSN that the other packages' tests use
// at the same time.
type Private struct {
	t       testing.TB
	bin     string
	dir     string
	data    string
	port    int
	cred    *syscall.Credential
	running bool
}

// PrivatePostgres initdb's and starts a private cluster, and stops it and
// removes its files when the test ends. It needs the Postgres server
// binaries (initdb, pg_ctl, postgres): on PATH or under
// /usr/lib/postgresql/<version>/bin, the newest version first. Without
// them it skips the test, saying why, or fails it when
// STRANGLER_REQUIRE_POSTGRES=1 (as in CI). Postgres refuses to run as
// root, so a root test runs the cluster as the postgres OS user.
func PrivatePostgres(t testing.TB) *Private {
	t.Helper()
	bin, err := serverBinaries()
	if err != nil {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("postgres required (%s=1) but a private cluster cannot be made: %v", EnvRequirePostgres, err)
		}
		t.Skipf("private postgres skipped: %v", err)
	}
	p := &Private{t: t, bin: bin}
	if os.Geteuid() == 0 {
		if p.cred, err = postgresUser(); err != nil {
			t.Skipf("private postgres skipped: running as root, and %v", err)
		}
	}
	// The dir is made by hand rather than with t.TempDir, whose parents
	// are private to root and so closed to the postgres user.
	if p.dir, err = os.MkdirTemp("", "strangler-pg-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.running {
			p.stop("immediate")
		}
		if err := os.RemoveAll(p.dir); err != nil {
			t.Errorf("remove the private postgres dir: %v", err)
		}
	})
	if p.cred != nil {
		if err := os.Chown(p.dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			t.Fatalf("chown the private postgres dir to the postgres user: %v", err)
		}
	}
	p.data = filepath.Join(p.dir, "data")
	_, port, _ := net.SplitHostPort(lifecycletest.FreeAddr(t))
	p.port, _ = strconv.Atoi(port)
	p.pg("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	// fsync and friends are off: the cluster lives for one test, and a
	// crash of the machine loses nothing worth keeping.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 100
`, p.port, p.dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	p.Start()
	return p
}

// DSN is the URL of the cluster's postgres database.
func (p *Private) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Start starts the cluster and waits until it accepts connections.
func (p *Private) Start() {
	p.t.Helper()
	p.pg("pg_ctl", "-D", p.data, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "120", "start")
	p.running = true
}

// Stop stops the cluster the way `pg_ctl -m fast` does: the server ends
// every session and shuts down cleanly.
func (p *Private) Stop() {
	p.t.Helper()
	p.stop("fast")
}

// Kill stops the cluster the way `pg_ctl -m immediate` does, as a crash:
// no clean shutdown, and a recovery at the next start.
func (p *Private) Kill() {
	p.t.Helper()
	p.stop("immediate")
}

// Restart stops the cluster (fast) and starts it again.
func (p *Private) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

func (p *Private) stop(mode string) {
	p.t.Helper()
	p.pg("pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "120", "stop")
	p.running = false
}

// pg runs one of the server's binaries, as the postgres user if the test
// is root, and fails the test with its output and the server log's tail.
func (p *Private) pg(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		if i := bytes.LastIndexByte(log[:max(len(log)-2000, 0)], '\n'); i >= 0 {
			log = log[i+1:]
		}
		p.t.Fatalf("private postgres: %s %s: %v\n%s\nserver log:\n%s", name, strings.Join(args, " "), err, out, log)
	}
}

// serverBinaries finds the dir of initdb, pg_ctl and postgres: initdb's on
// PATH (through its symlinks, since initdb finds postgres beside itself),
// else the newest /usr/lib/postgresql/<version>/bin.
func serverBinaries() (string, error) {
	var dirs []string
	if path, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(versions[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(versions[j])))
		return vi > vj
	})
	for _, d := range append(dirs, versions...) {
		ok := true
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("no Postgres server binaries (initdb, pg_ctl, postgres) on PATH or under /usr/lib/postgresql/*/bin")
}

// postgresUser is the credential of the postgres OS user.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("there is no postgres OS user to run the cluster as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
