package cgroup

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// watchEventfd turns a v1 memory.oom_control eventfd into an OOM channel.
// The kernel also signals the eventfd when the cgroup is removed, so every
// wakeup checks that the cgroup is still there before it counts as an OOM.
// The fd is made non-blocking so that it goes through Go's poller: closing
// it (ctx done) then wakes the blocked read.
func watchEventfd(ctx context.Context, efd int, dir string) (<-chan struct{}, error) {
	if err := unix.SetNonblock(efd, true); err != nil {
		unix.Close(efd)
		return nil, fmt.Errorf("oom eventfd: %w", err)
	}
	f := os.NewFile(uintptr(efd), "oom-eventfd")
	ch := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer f.Close()
		buf := make([]byte, 8)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			if !exists(filepath.Join(dir, "memory.oom_control")) {
				return
			}
			// The eventfd counter sums the events since the last read.
			for range binary.NativeEndian.Uint64(buf) {
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}

// watchMemoryEvents reports increments of oom_kill in a v2 memory.events,
// woken by inotify (the kernel notifies modifications of that file). It
// ends when ctx is done or the cgroup is removed.
func watchMemoryEvents(ctx context.Context, dir string) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("oom events: inotify: %w", err)
	}
	f := os.NewFile(uintptr(fd), "oom-inotify")
	file := filepath.Join(dir, "memory.events")
	if _, err := unix.InotifyAddWatch(fd, file, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		f.Close()
		return nil, fmt.Errorf("oom events: watch %s: %w", file, err)
	}
	// Read the starting count after the watch is in place, so no kill
	// between the two is missed.
	ev, err := readKV(dir, "memory.events")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("oom events: %w", err)
	}
	last := ev["oom_kill"]
	ch := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer f.Close()
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			ev, err := readKV(dir, "memory.events")
			if err != nil {
				return // cgroup removed
			}
			for ; last < ev["oom_kill"]; last++ {
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, nil
}
