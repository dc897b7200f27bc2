package peerctl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// defaultDoctorTimeout matches the daemon's default for a doctor.
const defaultDoctorTimeout = 20 * time.Second

func (a *app) doctorCommand() *cobra.Command {
	var (
		timeout time.Duration
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check whether others can find and reach this daemon",
		Long: `Check whether others can find and reach this daemon: that it has peers; that
the DHT peers closest to each of its resources' keys hold its provider records
(it asks them), with when the records were announced, when they are announced
again and when they expire; whether peers can dial it (public, behind NAT with
a relay, or unreachable); and whether its clock is behind its peers'. Each
problem comes with what to do about it.

Exit status: 0 if every check passed, 1 if something is wrong, 2 on an error.`,
		Example: `  peerctl doctor
  peerctl doctor -o json | jq '.checks[] | select(.ok | not)'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+networkSlack)
			defer cancel()
			rep, err := c.Doctor(ctx, client.DoctorOptions{Timeout: timeout})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				err = a.printJSON(rep)
			} else {
				err = a.printDoctor(rep, noTrunc)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				failed := 0
				for _, ch := range rep.Checks {
					if !ch.OK {
						failed++
					}
				}
				return exitError{code: ExitNone, msg: fmt.Sprintf("doctor: %d of %d checks failed", failed, len(rep.Checks))}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultDoctorTimeout, "give up on checks still asking the network after this long")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

// printDoctor writes one line per check: ok or FAIL, the check's name, what
// was found and, for a failure, what to do.
func (a *app) printDoctor(rep client.DoctorReport, noTrunc bool) error {
	rows := make([][]string, 0, len(rep.Checks))
	for _, ch := range rep.Checks {
		status := "ok"
		if !ch.OK {
			status = "FAIL"
		}
		name := ch.Name
		if kind, id, ok := strings.Cut(name, " "); ok {
			name = kind + " " + ids(id, noTrunc)
		}
		detail := ch.Detail
		if ch.Fix != "" {
			detail += " — fix: " + ch.Fix
		}
		// A fixed width, so that "ok" lines look alike with or without a FAIL.
		rows = append(rows, []string{pad(status, 4), name, detail})
	}
	return a.printRows(rows)
}
