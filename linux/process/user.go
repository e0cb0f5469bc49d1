package process

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execUser is the resolved identity of the process.
type execUser struct {
	uid, gid int
	groups   []int // supplementary groups
	home     string
}

// resolveUser resolves the spec's user against root's /etc/passwd and
// /etc/group (root is "/" inside the container).
//
// With username set, the user is looked up by name: uid, gid, home and the
// supplementary groups from /etc/group membership come from there. Otherwise
// uid and gid are taken as they are and only home is looked up, like runc.
// additionalGids are added in both cases.
func resolveUser(u *specs.User, root string) (*execUser, error) {
	passwd := filepath.Join(root, "etc/passwd")
	group := filepath.Join(root, "etc/group")

	for _, g := range u.AdditionalGids {
		if g > math.MaxInt32 {
			return nil, fmt.Errorf("additional gid %d is out of range (max %d)", g, math.MaxInt32)
		}
	}

	var eu execUser
	if u.Username != "" {
		defaults := &user.ExecUser{Home: "/"}
		r, err := user.GetExecUserPath(u.Username, defaults, passwd, group)
		if err != nil {
			return nil, fmt.Errorf("resolve user %q in the container: %w", u.Username, err)
		}
		if r.Uid > math.MaxInt32 || r.Gid > math.MaxInt32 {
			return nil, fmt.Errorf("user %q: uid %d or gid %d is out of range (max %d)", u.Username, r.Uid, r.Gid, math.MaxInt32)
		}
		eu = execUser{uid: r.Uid, gid: r.Gid, groups: r.Sgids, home: r.Home}
	} else {
		// uid_t is 32 bits and (uid_t)-1 means "unchanged" to setresuid:
		// 4294967295 would silently leave the process root. Refuse
		// everything the int32 view of the kernel ABI cannot hold.
		if u.UID > math.MaxInt32 {
			return nil, fmt.Errorf("uid %d is out of range (max %d)", u.UID, math.MaxInt32)
		}
		if u.GID > math.MaxInt32 {
			return nil, fmt.Errorf("gid %d is out of range (max %d)", u.GID, math.MaxInt32)
		}
		eu = execUser{uid: int(u.UID), gid: int(u.GID), home: "/"}
		uid := eu.uid
		users, err := user.ParsePasswdFileFilter(passwd, func(e user.User) bool { return e.Uid == uid })
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read the container's /etc/passwd: %w", err)
		}
		if len(users) > 0 {
			eu.home = users[0].Home
		}
	}
	for _, g := range u.AdditionalGids {
		eu.groups = append(eu.groups, int(g))
	}
	return &eu, nil
}

// withHome returns env with HOME=home appended when env has no non-empty
// HOME (empty HOME entries are dropped), like runc.
func withHome(env []string, home string) []string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok && v != "" {
			return env
		}
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if kv != "HOME=" {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+home)
}

// setUser switches to u: supplementary groups, then gid, then uid (after
// setuid the process could no longer change its groups). setgroups is skipped
// when the user namespace denies it (/proc/self/setgroups is "deny"), as runc
// does. The syscall package applies these to every thread of the process.
func setUser(u *execUser) error {
	if err := fixStdioOwner(u.uid); err != nil {
		return err
	}
	allowed, err := setgroupsAllowed()
	if err != nil {
		return err
	}
	if allowed {
		groups := u.groups
		if groups == nil {
			groups = []int{}
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if err := syscall.Setresgid(u.gid, u.gid, u.gid); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("setresgid %d: gid is not mapped in the container's user namespace", u.gid)
		}
		return fmt.Errorf("setresgid %d: %w", u.gid, err)
	}
	if err := syscall.Setresuid(u.uid, u.uid, u.uid); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("setresuid %d: uid is not mapped in the container's user namespace", u.uid)
		}
		return fmt.Errorf("setresuid %d: %w", u.uid, err)
	}
	return nil
}

func setgroupsAllowed() (bool, error) {
	data, err := os.ReadFile("/proc/self/setgroups")
	if errors.Is(err, os.ErrNotExist) {
		return true, nil // kernel without the file: always allowed
	}
	if err != nil {
		return false, fmt.Errorf("read /proc/self/setgroups: %w", err)
	}
	return string(bytes.TrimSpace(data)) != "deny", nil
}

// fixStdioOwner gives stdio to the container user, so that a user other
// than root can use the console it was given (runc does the same). /dev/null
// and files we may not chown (owner unmapped, read-only fs) are left alone.
func fixStdioOwner(uid int) error {
	var null unix.Stat_t
	haveNull := unix.Stat("/dev/null", &null) == nil
	for fd := 0; fd <= 2; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			if errors.Is(err, unix.EBADF) {
				continue
			}
			return fmt.Errorf("fstat fd %d: %w", fd, err)
		}
		if int(st.Uid) == uid || (haveNull && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev) {
			continue
		}
		if err := unix.Fchown(fd, uid, -1); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EINVAL) {
				continue
			}
			return fmt.Errorf("chown fd %d to uid %d: %w", fd, uid, err)
		}
	}
	return nil
}
