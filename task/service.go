// Package task serves containerd's task API (v3, and v2 for containerd
// 1.x) on top of the railcar engine: each RPC looks the container or process
// up, calls the engine, maps the error once at the edge and publishes the
// event containerd expects.
package task

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"

	"github.com/railcar-oci/railcar/linux"
)

// Options configure a Service.
type Options struct {
	// Namespace is the containerd namespace of the shim.
	Namespace string
	// Publisher sends events to containerd.
	Publisher events.Publisher
	// Reaper owns every wait4 of the shim process.
	Reaper *Reaper
	// Config is the shim config when a Create request names none.
	Config Config
	// Shutdown is called when containerd asks the shim to exit and no
	// container is left.
	Shutdown func()
}

// Service is the task service of one shim: every container of a group (a
// pod, under CRI) with its init and execs.
type Service struct {
	ctx       context.Context
	ns        string
	publisher events.Publisher
	reaper    *Reaper
	cfg       Config
	shutdown  func()
	consoles  consoles

	// events keeps the publication order: one goroutine forwards them.
	events chan any
	// forwarded is closed when the forwarder has published the last event.
	forwarded chan struct{}

	mu         sync.Mutex
	containers map[string]*container
	// creating counts Create calls in progress (not yet in containers).
	creating int
	engines  map[string]*linux.Engine

	lifecycle lifecycle
}

var _ taskAPI.TTRPCTaskService = (*Service)(nil)

// New returns the task service and starts its exit and event loops; they
// stop when ctx is done.
func New(ctx context.Context, o Options) *Service {
	s := &Service{
		ctx:        ctx,
		ns:         o.Namespace,
		publisher:  o.Publisher,
		reaper:     o.Reaper,
		cfg:        o.Config,
		shutdown:   o.Shutdown,
		events:     make(chan any, 128),
		forwarded:  make(chan struct{}),
		containers: make(map[string]*container),
		engines:    make(map[string]*linux.Engine),
	}
	s.lifecycle.init()
	exits := s.reaper.Subscribe()
	go s.processExits(exits)
	go s.forward()
	return s
}

// RegisterTTRPC serves the task API v3 (containerd 2.x) and v2
// (containerd 1.6/1.7) on server.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	registerV2(server, s)
	return nil
}

// Close waits (bounded) until the events queued before ctx ended are
// published (the TaskDelete that precedes Shutdown above all), then
// releases the service's shared resources. Call it after ctx is done.
func (s *Service) Close() error {
	select {
	case <-s.forwarded:
	case <-time.After(5 * time.Second):
		log.G(s.ctx).Warn("timed out publishing the last events")
	}
	return s.consoles.Close()
}

func (s *Service) getContainer(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.containers[id]
	if c == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s not created", id)
	}
	return c, nil
}

func (s *Service) getProcess(id, execID string) (*container, *process, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.process(execID)
	if err != nil {
		return nil, nil, errgrpc.ToGRPC(err)
	}
	return c, p, nil
}

// engine returns the engine for a state root (one per namespace and config).
func (s *Service) engine(cfg Config) (*linux.Engine, error) {
	root := stateDir(cfg, s.ns)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.engines[root]; ok {
		return e, nil
	}
	e, err := linux.New(linux.Config{
		Root:          root,
		SystemdCgroup: cfg.SystemdCgroup,
		Monitor:       s.reaper,
		InitMode:      cfg.RcInit,
	})
	if err != nil {
		return nil, fmt.Errorf("open engine at %s: %w", root, err)
	}
	s.engines[root] = e
	return e, nil
}

func stateDir(cfg Config, ns string) string {
	return cfg.StateRoot + "/" + ns
}

// send queues an event; events leave in the order they were sent.
func (s *Service) send(e any) {
	select {
	case s.events <- e:
	case <-s.ctx.Done():
	}
}

func (s *Service) forward() {
	defer close(s.forwarded)
	ctx := context.WithoutCancel(s.ctx)
	publish := func(e any) {
		if err := s.publisher.Publish(ctx, runtime.GetTopic(e), e); err != nil {
			log.G(ctx).WithError(err).Error("publish event")
		}
	}
	for {
		select {
		case e := <-s.events:
			publish(e)
		case <-s.ctx.Done():
			for {
				select {
				case e := <-s.events:
					publish(e)
				default:
					return
				}
			}
		}
	}
}

// Connect returns the shim's and the init's pid.
func (s *Service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	var pid int
	if c, err := s.getContainer(r.ID); err == nil {
		pid = c.init.Pid()
	}
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: uint32(pid)}, nil
}

// shutdownGrace is how long the shim keeps serving after a Shutdown that
// found no container left.
const shutdownGrace = 200 * time.Millisecond

// Shutdown stops the shim once its last container is deleted; with
// grouping (one shim per pod) containerd asks after every delete. The shim
// serves on for shutdownGrace first: containerd may have another Delete of
// the same task on its way (the CRI plugin's clean-up of a failed sandbox
// and its exit monitor both delete), which must get NotFound, not a closed
// connection; a Create in that time keeps the shim.
func (s *Service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*emptyResp, error) {
	s.exitWhenIdle(shutdownGrace)
	return empty, nil
}

// idleExit is how long a shim without containers waits for containerd's
// Shutdown before it exits by itself (containerd may never send it: the
// connection gone, the daemon stopped).
const idleExit = 30 * time.Second

// exitWhenIdle stops the shim after d if no container is left then and
// none is being created.
func (s *Service) exitWhenIdle(d time.Duration) {
	if s.shutdown == nil {
		return
	}
	time.AfterFunc(d, func() {
		if s.containerCount() == 0 {
			s.shutdown()
		}
	})
}

func (s *Service) containerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.containers) + s.creating
}
