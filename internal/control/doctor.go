package control

import (
	"context"
	"time"

	"connectrpc.com/connect"

	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// Limits of Doctor, which asks the DHT peers closest to each resource's
// keys.
const (
	// DefaultDoctorTimeout bounds a doctor whose request sets no timeout.
	DefaultDoctorTimeout = 20 * time.Second
	// MaxDoctorTimeout caps any doctor's timeout.
	MaxDoctorTimeout = 5 * time.Minute
)

// Doctor reports whether others can find and reach the node. Problems are
// findings, not errors: the call fails only on a bad request.
func (s *server) Doctor(ctx context.Context, req *connect.Request[controlv1.DoctorRequest]) (*connect.Response[controlv1.DoctorResponse], error) {
	timeout, err := timeoutOf(req.Msg.GetTimeoutMs(), DefaultDoctorTimeout, MaxDoctorTimeout)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep := s.b.Doctor(ctx)
	out := &controlv1.DoctorResponse{Ok: rep.OK, Checks: make([]*controlv1.DoctorCheck, 0, len(rep.Checks))}
	for _, c := range rep.Checks {
		out.Checks = append(out.Checks, &controlv1.DoctorCheck{Name: c.Name, Ok: c.OK, Detail: c.Detail, Fix: c.Fix})
	}
	return connect.NewResponse(out), nil
}
