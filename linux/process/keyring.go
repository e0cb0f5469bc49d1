package process

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Key permission bits (linux/key.h).
const (
	keyUsrSearch = 0x00080000 // KEY_USR_SEARCH
	keyOthSearch = 0x00000008 // KEY_OTH_SEARCH
)

// joinSessionKeyring gives the process its own session keyring "_ses.<id>",
// so that it does not share the runtime's (and so the host's) keys. Processes
// exec'd into the same container later join the same ring by name, which the
// kernel only finds for them when they may search it without possessing it:
// the ring is made searchable by its owner uid, or by anyone in a user
// namespace (where the owner as the kernel sees it may be no uid of the
// container), as runc does. A kernel without keyrings (ENOSYS) is not an
// error: the keyring is a best-effort isolation.
func joinSessionKeyring(id string, userNS bool, selinuxLabel string) error {
	if selinuxLabel != "" {
		if err := setKeyLabel(selinuxLabel); err != nil {
			return err
		}
		defer setKeyLabel("")
	}
	key, err := unix.KeyctlJoinSessionKeyring("_ses." + id)
	if errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("join session keyring %q: %w", "_ses."+id, err)
	}
	search := uint32(keyUsrSearch)
	if userNS {
		search = keyOthSearch
	}
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, key)
	if err != nil {
		return fmt.Errorf("describe session keyring: %w", err)
	}
	// "type;uid;gid;perm;description"
	fields := strings.SplitN(desc, ";", 5)
	if len(fields) < 5 {
		return fmt.Errorf("describe session keyring: unexpected %q", desc)
	}
	perm, err := strconv.ParseUint(fields[3], 16, 32)
	if err != nil {
		return fmt.Errorf("describe session keyring: bad permissions in %q", desc)
	}
	if err := unix.KeyctlSetperm(key, uint32(perm)|search); err != nil {
		return fmt.Errorf("set session keyring permissions: %w", err)
	}
	return nil
}
