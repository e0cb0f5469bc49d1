package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountFlags maps the mount(8) options of runtime-spec config.md to MS_*
// flags; clear means the option removes the flag. The table is runc's
// (libcontainer/specconv), so a spec means the same thing under both.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	// "acl" cannot be mapped to MS_POSIXACL (runc issue 3738), so it stays data.
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
}

// propagationFlags maps propagation options (and rootfsPropagation values).
var propagationFlags = map[string]uintptr{
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
}

// recAttrFlags maps the recursive options, applied with mount_setattr(2)
// and AT_RECURSIVE (kernel 5.12+).
var recAttrFlags = map[string]struct {
	clear bool
	flag  uint64
}{
	"rro":            {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":            {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":          {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {false, unix.MOUNT_ATTR_NODEV},
	"rdev":           {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":          {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":      {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {false, unix.MOUNT_ATTR_RELATIME},
	"rnorelatime":    {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {false, unix.MOUNT_ATTR_NOATIME},
	"ratime":         {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {false, unix.MOUNT_ATTR_STRICTATIME},
	"rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":     {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// KnownMountOptions lists every mount option this package understands
// (besides filesystem data, which is passed through); for `features`.
func KnownMountOptions() []string {
	var out []string
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	for k := range recAttrFlags {
		out = append(out, k)
	}
	return append(out, "tmpcopyup", "idmap", "ridmap")
}

// mount is one spec mount, its options parsed.
type mount struct {
	Source      string
	Destination string // as in the spec: a path inside the container
	Type        string // "bind" for every bind mount, whatever the spec said
	Flags       uintptr
	Cleared     uintptr // flags the options explicitly cleared (rw, dev, ...)
	Propagation []uintptr
	RecAttr     *unix.MountAttr
	Data        string
	IDMap       bool // idmap, ridmap, or uid/gid mappings on the mount
	CopyUp      bool // tmpcopyup
	// Tree is the detached copy of the source the parent made, if any
	// (Config.IDMapped): what a bind mount mounts instead of Source.
	Tree *os.File
}

func (m *mount) isBind() bool { return m.Flags&unix.MS_BIND != 0 }

// parseMount turns a spec mount into a mount, the way runc's specconv does.
func parseMount(sm specs.Mount) (*mount, error) {
	if strings.IndexByte(sm.Source, 0) >= 0 || strings.IndexByte(sm.Destination, 0) >= 0 ||
		strings.IndexByte(sm.Type, 0) >= 0 {
		return nil, fmt.Errorf("mount %q on %s: field contains a null byte", sm.Source, sm.Destination)
	}
	m := &mount{Source: sm.Source, Destination: sm.Destination, Type: sm.Type}
	var data []string
	var set, clr uint64
	for _, o := range sm.Options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				m.Flags &^= f.flag
				m.Cleared |= f.flag
			} else {
				m.Flags |= f.flag
				m.Cleared &^= f.flag
			}
		} else if f, ok := propagationFlags[o]; ok {
			m.Propagation = append(m.Propagation, f)
		} else if f, ok := recAttrFlags[o]; ok {
			if f.clear {
				clr |= f.flag
				set &^= f.flag
			} else {
				set |= f.flag
				clr &^= f.flag
			}
			// mount_setattr(2): an atime setting needs MOUNT_ATTR__ATIME in attr_clr.
			if f.flag&unix.MOUNT_ATTR__ATIME == f.flag {
				clr |= unix.MOUNT_ATTR__ATIME
			}
		} else if o == "tmpcopyup" {
			m.CopyUp = true
		} else if o == "idmap" || o == "ridmap" {
			m.IDMap = true
		} else {
			data = append(data, o)
		}
	}
	m.Data = strings.Join(data, ",")
	if set != 0 || clr != 0 {
		m.RecAttr = &unix.MountAttr{Attr_set: set, Attr_clr: clr}
	}
	if len(sm.UIDMappings) > 0 || len(sm.GIDMappings) > 0 {
		m.IDMap = true
	}
	if m.Type == "bind" {
		// runc passes type "bind" without a bind option to mount(2), which
		// fails; crun and the spec's intent make it a (non-recursive) bind.
		m.Flags |= unix.MS_BIND
	}
	if m.isBind() {
		// The type of a bind mount is meaningless; runc calls it "bind" too.
		m.Type = "bind"
		if !filepath.IsAbs(m.Source) {
			// Relative to the bundle, which is the init's working directory.
			abs, err := filepath.Abs(m.Source)
			if err != nil {
				return nil, fmt.Errorf("mount %q on %s: %w", sm.Source, sm.Destination, err)
			}
			m.Source = abs
		}
	}
	return m, nil
}

// cleanPath cleans a container path lexically and makes it absolute, so
// "../../etc" becomes "/etc" (runc's LexicallyCleanPath for our use).
func cleanPath(p string) string {
	return filepath.Clean("/" + p)
}
