package client

import (
	"context"
	"time"

	"connectrpc.com/connect"

	controlv1 "github.com/pullnet/pullnet/proto/gen/pullnet/control/v1"
)

// DoctorReport answers "can others find and reach this daemon?". OK is true
// when every check is.
type DoctorReport struct {
	OK     bool          `json:"ok"`
	Checks []DoctorCheck `json:"checks"`
}

// DoctorCheck is one finding: "peers", "reachability", "clock", or
// "findable <resource ID>" for each of the daemon's resources.
type DoctorCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Fix says what to do about a failed check.
	Fix string `json:"fix,omitempty"`
}

// DoctorOptions tune one Doctor call.
type DoctorOptions struct {
	// Timeout bounds the daemon's checks; zero means the daemon's default.
	Timeout time.Duration
}

// Doctor asks the daemon to check whether others can find and reach it. A
// report with problems is not an error.
func (c *Client) Doctor(ctx context.Context, opt DoctorOptions) (DoctorReport, error) {
	res, err := c.rpc.Doctor(ctx, connect.NewRequest(&controlv1.DoctorRequest{TimeoutMs: millis(opt.Timeout)}))
	if err != nil {
		return DoctorReport{}, wrap(err)
	}
	rep := DoctorReport{OK: res.Msg.GetOk(), Checks: make([]DoctorCheck, 0, len(res.Msg.GetChecks()))}
	for _, ch := range res.Msg.GetChecks() {
		rep.Checks = append(rep.Checks, DoctorCheck{Name: ch.GetName(), OK: ch.GetOk(), Detail: ch.GetDetail(), Fix: ch.GetFix()})
	}
	return rep, nil
}
