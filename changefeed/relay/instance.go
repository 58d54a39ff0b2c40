package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// An instance name, the lease's owner, is host-pid-pidns-random: the host
// name, the process id, the inode of the process's PID namespace (0 where
// it cannot be read) and 4 random bytes in hex. The host and namespace
// tell a relay that the owner's process id means the same process as its
// own ids do, so that it can see that process is gone (see goneLocal).
func defaultInstance() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%d-%s", host, os.Getpid(), pidNamespace(), hex.EncodeToString(b[:]))
}

// pidNamespace is the inode of this process's PID namespace, from
// /proc/self/ns/pid ("pid:[4026531836]"), or 0 where that cannot be read.
func pidNamespace() uint64 {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "pid:["), "]"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// goneLocal reports whether owner is a default instance name of a process
// on this host, in this PID namespace, that no longer runs (it has exited,
// or is a zombie not yet reaped): a relay killed with the process it ran
// in, whose lease would otherwise hold every standby back until it
// expires. A name it cannot read, a process on another host or in another
// namespace, or a process id that is in use (by the owner or by a process
// that reused its id) reports false, and the lease is waited out.
func goneLocal(owner string) bool {
	parts := strings.Split(owner, "-")
	if len(parts) < 4 {
		return false
	}
	n := len(parts)
	host := strings.Join(parts[:n-3], "-")
	pid, err := strconv.Atoi(parts[n-3])
	if err != nil || pid <= 0 {
		return false
	}
	ns, err := strconv.ParseUint(parts[n-2], 10, 64)
	if err != nil || ns == 0 || ns != pidNamespace() {
		return false
	}
	if me, _ := os.Hostname(); host == "" || host != me || pid == os.Getpid() {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if os.IsNotExist(err) {
		return true
	}
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis: "pid (comm) S ...".
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
