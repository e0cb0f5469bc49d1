package linux

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// LoadSpec reads bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s has no config.json", bundle)
		}
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return &s, nil
}

// Validate checks what the engine needs from a spec before it touches the
// host, and returns the absolute rootfs path.
func Validate(s *specs.Spec, bundle string) (string, error) {
	major, _, _ := strings.Cut(s.Version, ".")
	if major != "1" {
		return "", fmt.Errorf("config.json: unsupported ociVersion %q (want 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return "", errors.New("config.json: root.path is empty")
	}
	if s.Process == nil {
		return "", errors.New("config.json: process is required")
	}
	if len(s.Process.Args) == 0 {
		return "", errors.New("config.json: process.args is empty")
	}
	if s.Process.Cwd != "" && !filepath.IsAbs(s.Process.Cwd) {
		return "", fmt.Errorf("config.json: process.cwd %q is not absolute", s.Process.Cwd)
	}
	if s.Linux == nil {
		return "", errors.New("config.json: linux is required")
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("rootfs %s is not a directory", rootfs)
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsNames[ns.Type]; !ok {
			return "", fmt.Errorf("config.json: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return "", fmt.Errorf("config.json: namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return "", fmt.Errorf("config.json: namespace %s path %q is not absolute", ns.Type, ns.Path)
		}
		// The init's bootstrap is line- and space-separated text: a path
		// with a blank or control character in it could add a namespace
		// nobody asked for, or join another one.
		if strings.IndexFunc(ns.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return "", fmt.Errorf("config.json: namespace %s path %q contains a blank or control character", ns.Type, ns.Path)
		}
	}
	newUser, joinUser := false, ""
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			if ns.Path == "" {
				newUser = true
			} else {
				joinUser = ns.Path
			}
		}
	}
	maps := len(s.Linux.UIDMappings) + len(s.Linux.GIDMappings)
	if newUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return "", errors.New("config.json: a new user namespace needs uidMappings and gidMappings")
	}
	// containerd (the sandbox and every container of a pod with a user
	// namespace) and CRI-O give the mappings of the user namespace joined
	// along with its path. As with runc, they are accepted when they are
	// that namespace's own: Create compares them once the init has joined
	// it (checkJoinedMappings).
	if maps > 0 && !newUser && joinUser == "" {
		return "", errors.New("config.json: uidMappings and gidMappings need a new user namespace")
	}
	for _, m := range append(append([]specs.LinuxIDMapping{}, s.Linux.UIDMappings...), s.Linux.GIDMappings...) {
		if m.Size == 0 {
			return "", errors.New("config.json: an id mapping has size 0")
		}
		if uint64(m.HostID)+uint64(m.Size) > 1<<32-1 || uint64(m.ContainerID)+uint64(m.Size) > 1<<32-1 {
			return "", fmt.Errorf("config.json: id mapping %d:%d:%d overflows", m.ContainerID, m.HostID, m.Size)
		}
	}
	if (s.Hostname != "" || s.Domainname != "") && !seen[specs.UTSNamespace] {
		return "", errors.New("config.json: hostname and domainname need a UTS namespace")
	}
	if len(s.Linux.TimeOffsets) > 0 && !seen[specs.TimeNamespace] {
		return "", errors.New("config.json: timeOffsets need a time namespace")
	}
	if s.Linux.IntelRdt != nil {
		return "", errors.New("config.json: linux.intelRdt is not supported")
	}
	if len(s.Linux.NetDevices) > 0 {
		return "", errors.New("config.json: linux.netDevices is not supported")
	}
	if s.Linux.MemoryPolicy != nil {
		return "", errors.New("config.json: linux.memoryPolicy is not supported")
	}
	for k := range s.Linux.Sysctl {
		if err := checkSysctl(k, seen); err != nil {
			return "", err
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return "", fmt.Errorf("config.json: mount destination %q is not absolute", m.Destination)
		}
	}
	return rootfs, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// mergeResources lays the sections set in u over r.
func mergeResources(r, u *specs.LinuxResources) *specs.LinuxResources {
	if r == nil {
		r = &specs.LinuxResources{}
	}
	out := *r
	if u.Memory != nil {
		out.Memory = u.Memory
	}
	if u.CPU != nil {
		out.CPU = u.CPU
	}
	if u.Pids != nil {
		out.Pids = u.Pids
	}
	if u.BlockIO != nil {
		out.BlockIO = u.BlockIO
	}
	if u.HugepageLimits != nil {
		out.HugepageLimits = u.HugepageLimits
	}
	if u.Network != nil {
		out.Network = u.Network
	}
	if u.Rdma != nil {
		out.Rdma = u.Rdma
	}
	if u.Unified != nil {
		out.Unified = u.Unified
	}
	if u.Devices != nil {
		out.Devices = u.Devices
	}
	return &out
}

// checkSysctl refuses a namespaced sysctl whose namespace is the host's
// (writing it would change the host), and sysctls no namespace isolates.
func checkSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	need := specs.LinuxNamespaceType("")
	switch {
	case strings.HasPrefix(key, "net."):
		need = specs.NetworkNamespace
	case strings.HasPrefix(key, "fs.mqueue."), strings.HasPrefix(key, "kernel.msg"),
		strings.HasPrefix(key, "kernel.shm"), key == "kernel.sem", key == "kernel.sem_next_id":
		need = specs.IPCNamespace
	case key == "kernel.hostname", key == "kernel.domainname":
		need = specs.UTSNamespace
	default:
		return fmt.Errorf("config.json: sysctl %q is not namespaced: not allowed in a container", key)
	}
	if !ns[need] {
		return fmt.Errorf("config.json: sysctl %q needs a %s namespace of the container's own", key, need)
	}
	return nil
}

// checkJoinedMappings checks that the uidMappings and gidMappings of a
// spec that joins a user namespace by path are the mappings of that
// namespace, as pid (a process that joined it) sees them.
func checkJoinedMappings(pid int, s *specs.Spec) error {
	joins := false
	for _, ns := range s.Linux.Namespaces {
		joins = joins || ns.Type == specs.UserNamespace && ns.Path != ""
	}
	if !joins || len(s.Linux.UIDMappings)+len(s.Linux.GIDMappings) == 0 {
		return nil
	}
	for _, f := range []struct {
		file string
		want []specs.LinuxIDMapping
	}{{"uid_map", s.Linux.UIDMappings}, {"gid_map", s.Linux.GIDMappings}} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f.file)
		if err != nil {
			return err
		}
		have, err := parseIDMap(string(b))
		if err != nil {
			return fmt.Errorf("%s: %w", f.file, err)
		}
		want := slices.Clone(f.want)
		byContainerID := func(a, b specs.LinuxIDMapping) int { return cmp.Compare(a.ContainerID, b.ContainerID) }
		slices.SortFunc(have, byContainerID)
		slices.SortFunc(want, byContainerID)
		if !slices.Equal(have, want) {
			return fmt.Errorf("config.json: %s %v are not those of the user namespace joined, %v",
				strings.TrimSuffix(f.file, "_map")+"Mappings", want, have)
		}
	}
	return nil
}

// parseIDMap parses /proc/PID/uid_map or gid_map.
func parseIDMap(s string) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("bad line %q", l)
		}
		var v [3]uint32
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad line %q", l)
			}
			v[i] = uint32(n)
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	return out, nil
}
