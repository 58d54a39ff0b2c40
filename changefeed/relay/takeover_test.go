package relay_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestRelayTakesLeaseOfGoneProcess starts a relay while its group's lease
// is held, for ten minutes yet, by an owner named as a default instance is.
// Where that owner is a process on this host that has exited (reaped or
// not), the relay takes the lease at once: a relay killed with `strangler
// up` otherwise stopped every event of the restarted `up` for the rest of
// its lease, ten seconds, in which a rollback's wait for the back sync saw
// nothing to wait for. Where the owner may still run, it stands by.
func TestRelayTakesLeaseOfGoneProcess(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Skipf("no /proc/self/ns/pid (%v): the takeover is for Linux", err)
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(link, "pid:["), "]")
	// sleeper is a real process the test ends as the case needs.
	sleeper := func(t *testing.T) *exec.Cmd {
		cmd := exec.Command("sleep", "600")
		changefeedtest.Must(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	name := func(host string, pid int, ns string) string { return fmt.Sprintf("%s-%d-%s-deadbeef", host, pid, ns) }
	tests := []struct {
		name  string
		owner func(t *testing.T) string
		takes bool
	}{
		{"exited and reaped", func(t *testing.T) string {
			cmd := sleeper(t)
			changefeedtest.Must(t, cmd.Process.Kill())
			_ = cmd.Wait()
			return name(host, cmd.Process.Pid, ns)
		}, true},
		{"a zombie", func(t *testing.T) string {
			cmd := sleeper(t)
			changefeedtest.Must(t, cmd.Process.Kill())
			stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
			changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
				b, _ := os.ReadFile(stat)
				return strings.Contains(string(b), ") Z "), "not yet a zombie: " + string(b)
			})
			return name(host, cmd.Process.Pid, ns)
		}, true},
		{"running", func(t *testing.T) string { return name(host, sleeper(t).Process.Pid, ns) }, false},
		{"this process", func(t *testing.T) string { return name(host, os.Getpid(), ns) }, false},
		{"another host", func(t *testing.T) string {
			cmd := sleeper(t)
			changefeedtest.Must(t, cmd.Process.Kill())
			_ = cmd.Wait()
			return name("elsewhere", cmd.Process.Pid, ns)
		}, false},
		{"another PID namespace", func(t *testing.T) string {
			cmd := sleeper(t)
			changefeedtest.Must(t, cmd.Process.Kill())
			_ = cmd.Wait()
			return name(host, cmd.Process.Pid, "1"+ns)
		}, false},
		{"a name of the operator's", func(*testing.T) string { return "relay-a" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), outbox.Migrations())
			owner := tt.owner(t)
			changefeedtest.Must(t, gdb.Exec("INSERT INTO outbox_relay (name, owner, lease_until) VALUES ('main', ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + 600000)", owner).Error)
			write(t, gdb, "item", "k1", 1)
			b := changefeedtest.NewBroker(t)
			// A short lease of its own makes the standby try every 200 ms.
			r, _ := startRelay(t, gdb, b, relay.Config{Name: "main", LeaseTTL: 600 * time.Millisecond}, nil)
			if tt.takes {
				changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
					return r.Published() == 1, fmt.Sprintf("leading %v, published %d", r.Leading(), r.Published())
				})
				return
			}
			// Five tries at the lease, then the owner must still hold it.
			time.Sleep(time.Second)
			var held string
			changefeedtest.Must(t, gdb.Raw("SELECT owner FROM outbox_relay WHERE name = 'main'").Scan(&held).Error)
			if r.Leading() || r.Published() != 0 || held != owner {
				t.Fatalf("leading %v, published %d, lease held by %q; want the lease left to %q", r.Leading(), r.Published(), held, owner)
			}
		})
	}
}
