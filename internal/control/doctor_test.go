package control_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/control/controltest"
	"github.com/pullnet/pullnet/node"
	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

func TestDoctor(t *testing.T) {
	var gotDeadline time.Duration
	b := &controltest.Backend{DoctorFunc: func(ctx context.Context) node.DoctorReport {
		if d, ok := ctx.Deadline(); ok {
			gotDeadline = time.Until(d)
		}
		return node.DoctorReport{OK: false, Checks: []node.DoctorCheck{
			{Name: "peers", OK: true, Detail: "3 connected, routing table 5"},
			{Name: "findable bafk", OK: false, Detail: "held by 0 of 5 closest peers", Fix: "wait for the reprovide"},
		}}
	}}
	sock := controltest.Start(t, b, control.Options{})
	for _, grpc := range []bool{false, true} {
		c := newClient(t, sock, grpc)
		res, err := c.Doctor(context.Background(), connect.NewRequest(&controlv1.DoctorRequest{TimeoutMs: 3000}))
		if err != nil {
			t.Fatal(err)
		}
		want := &controlv1.DoctorResponse{Ok: false, Checks: []*controlv1.DoctorCheck{
			{Name: "peers", Ok: true, Detail: "3 connected, routing table 5"},
			{Name: "findable bafk", Ok: false, Detail: "held by 0 of 5 closest peers", Fix: "wait for the reprovide"},
		}}
		if !proto.Equal(res.Msg, want) {
			t.Errorf("grpc=%v: Doctor:\n got %v\nwant %v", grpc, res.Msg, want)
		}
		if gotDeadline <= 0 || gotDeadline > 3*time.Second {
			t.Errorf("grpc=%v: backend's deadline in %v; want within the 3s asked for", grpc, gotDeadline)
		}
	}

	c := newClient(t, sock, false)
	if _, err := c.Doctor(context.Background(), connect.NewRequest(&controlv1.DoctorRequest{})); err != nil {
		t.Fatal(err)
	}
	if gotDeadline <= 3*time.Second || gotDeadline > control.DefaultDoctorTimeout {
		t.Errorf("no timeout: backend's deadline in %v; want the default %v", gotDeadline, control.DefaultDoctorTimeout)
	}
	_, err := c.Doctor(context.Background(), connect.NewRequest(&controlv1.DoctorRequest{TimeoutMs: -1}))
	wantCode(t, err, connect.CodeInvalidArgument, "timeout_ms")
}
