package task

import (
	"sync"
	"syscall"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/log"
)

// lifecycle matches reaped exits to processes and keeps containerd's event
// order: a process's exit is published after its start, and a container's
// init exit after the exits of all its execs (containerd deletes the task
// on the init's exit and would lose exec exits that came later). The scheme
// is the one of containerd's runc shim:
//
//   - before the engine starts a process, the caller subscribes to every
//     exit (preStart), because the process may exit before its pid is known;
//   - after the start event is published, handleStarted either records the
//     pid as running or handles the exit that already came;
//   - an init exit waits until the container's running execs reach zero.
type lifecycle struct {
	mu           sync.Mutex
	running      map[int][]runningProcess
	runningExecs map[*container]int
	execCounts   map[*container]chan<- int
	initExited   map[*container]Exit
	subscribers  map[*map[int][]Exit]struct{}
}

type runningProcess struct {
	c *container
	p *process
}

func (l *lifecycle) init() {
	l.running = make(map[int][]runningProcess)
	l.runningExecs = make(map[*container]int)
	l.execCounts = make(map[*container]chan<- int)
	l.initExited = make(map[*container]Exit)
	l.subscribers = make(map[*map[int][]Exit]struct{})
}

// preStart must be called with l.mu held. c is the container whose init is
// about to start (nil for create and exec). The returned handleStarted is
// called after the start event, without l.mu; cleanup always, on return.
func (s *Service) preStart(c *container) (handleStarted func(*container, *process, int), cleanup func()) {
	l := &s.lifecycle
	exits := make(map[int][]Exit)
	l.subscribers[&exits] = struct{}{}
	if c != nil {
		// The created init is in running; take it out so that an exit
		// during start waits for the start event.
		pid := c.init.Pid()
		var keep []runningProcess
		for _, rp := range l.running[pid] {
			if rp.c != c {
				keep = append(keep, rp)
			}
		}
		if len(keep) > 0 {
			l.running[pid] = keep
		} else {
			delete(l.running, pid)
		}
	}
	handleStarted = func(c *container, p *process, pid int) {
		l.mu.Lock()
		ees, exited := exits[pid]
		delete(l.subscribers, &exits)
		exits = nil
		if pid == 0 || exited {
			if p == c.init && exited {
				l.initExited[c] = ees[0]
			}
			l.mu.Unlock()
			for _, e := range ees {
				if p == c.init {
					s.handleInitExit(e, c)
				} else {
					s.handleProcessExit(e, c, p)
				}
			}
			return
		}
		l.running[pid] = append(l.running[pid], runningProcess{c: c, p: p})
		l.mu.Unlock()
	}
	cleanup = func() {
		if exits != nil {
			l.mu.Lock()
			delete(l.subscribers, &exits)
			l.mu.Unlock()
		}
	}
	return handleStarted, cleanup
}

func (s *Service) processExits(exits chan Exit) {
	l := &s.lifecycle
	for e := range exits {
		l.mu.Lock()
		for sub := range l.subscribers {
			(*sub)[e.Pid] = append((*sub)[e.Pid], e)
		}
		rps := l.running[e.Pid]
		delete(l.running, e.Pid)
		for _, rp := range rps {
			if rp.p == rp.c.init {
				l.initExited[rp.c] = e
			}
		}
		l.mu.Unlock()
		for _, rp := range rps {
			if rp.p == rp.c.init {
				s.handleInitExit(e, rp.c)
			} else {
				s.handleProcessExit(e, rp.c, rp.p)
			}
		}
	}
}

// handleInitExit publishes the init's exit once no exec of the container
// runs. Without a private pid namespace the execs survive the init: they
// are killed first, as runc's shim does.
func (s *Service) handleInitExit(e Exit, c *container) {
	if !c.ownPidNS {
		if err := c.c.Signal(syscall.SIGKILL, true); err != nil {
			log.G(s.ctx).WithError(err).WithField("id", c.id).Debug("kill remaining processes")
		}
	}
	l := &s.lifecycle
	l.mu.Lock()
	n := l.runningExecs[c]
	if n == 0 {
		delete(l.runningExecs, c)
		l.mu.Unlock()
		s.handleProcessExit(e, c, c.init)
		return
	}
	counts := make(chan int, n)
	l.execCounts[c] = counts
	l.mu.Unlock()
	go func() {
		for n := range counts {
			if n == 0 {
				break
			}
		}
		l.mu.Lock()
		delete(l.execCounts, c)
		delete(l.runningExecs, c)
		l.mu.Unlock()
		s.handleProcessExit(e, c, c.init)
	}()
}

func (s *Service) handleProcessExit(e Exit, c *container, p *process) {
	isInit := p == c.init
	if p.status() != statusDeleted {
		p.setExited(e.Status, e.Timestamp)
		if isInit {
			c.initExitedHook(s.ctx, e)
		}
		s.send(&eventstypes.TaskExit{
			ContainerID: c.id,
			ID:          p.eventID(c),
			Pid:         uint32(e.Pid),
			ExitStatus:  uint32(e.Status),
			ExitedAt:    protobuf.ToTimestamp(e.Timestamp),
		})
	}
	if !isInit {
		s.execDone(c)
	}
}

// execDone counts an exec as no longer running.
func (s *Service) execDone(c *container) {
	l := &s.lifecycle
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runningExecs[c]--
	if ch, ok := l.execCounts[c]; ok {
		ch <- l.runningExecs[c]
	}
}

// eventID is the process id in events: the container id for the init.
func (p *process) eventID(c *container) string {
	if p.id == "" {
		return c.id
	}
	return p.id
}
