package task

import (
	"context"

	"github.com/containerd/ttrpc"
)

// registerV2 serves the same methods as containerd.task.v2.Task, the task
// API of containerd 1.6 and 1.7. Its messages are wire-identical to v3's
// (only the package name differs), so each method decodes into the v3
// request type and the v3 response encodes as the v2 one.
func registerV2(server *ttrpc.Server, s *Service) {
	server.RegisterService("containerd.task.v2.Task", &ttrpc.ServiceDesc{
		Methods: map[string]ttrpc.Method{
			"State":      method(s.State),
			"Create":     method(s.Create),
			"Start":      method(s.Start),
			"Delete":     method(s.Delete),
			"Pids":       method(s.Pids),
			"Pause":      method(s.Pause),
			"Resume":     method(s.Resume),
			"Checkpoint": method(s.Checkpoint),
			"Kill":       method(s.Kill),
			"Exec":       method(s.Exec),
			"ResizePty":  method(s.ResizePty),
			"CloseIO":    method(s.CloseIO),
			"Update":     method(s.Update),
			"Wait":       method(s.Wait),
			"Stats":      method(s.Stats),
			"Connect":    method(s.Connect),
			"Shutdown":   method(s.Shutdown),
		},
	})
}

func method[Req any, Resp any](f func(context.Context, *Req) (Resp, error)) ttrpc.Method {
	return func(ctx context.Context, unmarshal func(any) error) (any, error) {
		req := new(Req)
		if err := unmarshal(req); err != nil {
			return nil, err
		}
		return f(ctx, req)
	}
}
