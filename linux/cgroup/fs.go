package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes one value to a cgroup control file. Control files exist
// or they don't: O_CREATE is never used, so a file the kernel lacks gives
// ENOENT instead of a confusing EACCES.
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	if _, err := f.WriteString(value); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a single-number control file; "max" reads as 0.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, name), err)
	}
	return v, nil
}

// readKV reads a flat keyed file ("key value" lines) such as memory.stat.
func readKV(dir, name string) (map[string]uint64, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]uint64)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out, sc.Err()
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// removeCgroups removes the cgroup directories dirs, each with every
// cgroup below it (a container may have made sub-cgroups through its cgroup
// namespace), deepest first. rmdir fails with EBUSY while a cgroup still has
// tasks, which lasts a little after the last one was killed (the kernel
// releases exiting tasks asynchronously), so busy directories are retried
// for about a second in all. Directories already gone are no error.
func removeCgroups(dirs ...string) error {
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(time.Second)
	for {
		var busy []string
		var errs []error
		for _, d := range dirs {
			err := removeTree(d)
			switch {
			case err == nil:
			case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
				busy = append(busy, d)
				errs = append(errs, err)
			default:
				return err
			}
		}
		if len(busy) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup: still busy after 1s: %w", errors.Join(errs...))
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
		dirs = busy
	}
}

// removeTree makes one attempt at removing dir and the cgroups below it.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
