package peerctl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// defaultWantsTimeout bounds a listing of the network's wants unless
// --timeout says otherwise.
const defaultWantsTimeout = 10 * time.Second

func (a *app) wantCommand() *cobra.Command {
	var desc, expires string
	cmd := &cobra.Command{
		Use:   "want QUERY...",
		Short: "Publish what you are looking for, so providers can find it",
		Long: `Publish a want: a signed, expiring record that you are looking for what a
query matches. The arguments, joined by spaces, form the query, as for find.
The want is provided in the network under the query's index terms, so
providers whose resources share them find it with 'peerctl wants'. The
daemon watches for resources matching the want and remembers them: see
'peerctl wants --mine'. Withdraw it with 'peerctl unwant ID'; otherwise it
expires after --expires (at most 30 days).`,
		Example: `  peerctl want kind:compute tag:gpu gpu.count>=2 --desc "a week of training"
  peerctl want kind:dataset tag:weather --expires 30d`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("want: missing the QUERY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl, err := parseSince(expires)
			if err != nil {
				return usageErrorf("--expires %q: %v", expires, err)
			}
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				id, exp, err := c.Want(ctx, strings.Join(args, " "), desc, ttl)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(map[string]any{"id": id, "expires": exp})
				}
				_, err = fmt.Fprintf(a.stdout, "want %s published, expires %s\n", id, exp.Local().Format("2006-01-02 15:04"))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&desc, "desc", "", "a description of what you need (at most 1 KiB)")
	cmd.Flags().StringVar(&expires, "expires", "7d", "how long the want lives, such as 24h or 7d (at most 30d)")
	return cmd
}

func (a *app) wantsCommand() *cobra.Command {
	var (
		mine    bool
		timeout time.Duration
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "wants [QUERY...]",
		Short: "List open wants: what others look for, or your own and their matches",
		Long: `List the open wants in the network. With no QUERY, those that your own
resources could serve (wants sharing an index term with them); with a QUERY,
those sharing an index term with it. Wants are verified: only live wants
signed and served by their owner are shown.

With --mine, list your own wants and the resources that have matched them
since they were published.`,
		Example: `  peerctl wants
  peerctl wants tag:gpu
  peerctl wants --mine -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if mine && len(args) > 0 {
				return usageErrorf("wants: --mine takes no QUERY")
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %v: want a positive duration", timeout)
			}
			c, err := a.dial()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+networkSlack)
			defer cancel()
			ws, err := c.Wants(ctx, strings.Join(args, " "), client.WantsOptions{Mine: mine, Timeout: timeout})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(ws)
			}
			return a.printWants(ws, mine, noTrunc)
		},
	}
	cmd.Flags().BoolVar(&mine, "mine", false, "list your own wants and their matches")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWantsTimeout, "stop asking the network after this long")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) printWants(ws []client.Want, mine, noTrunc bool) error {
	if len(ws) == 0 {
		msg := "no open wants found\n"
		if mine {
			msg = "you have no open wants\n"
		}
		_, err := fmt.Fprint(a.stdout, msg)
		return err
	}
	header := []string{"ID", "OWNER", "QUERY", "EXPIRES", "DESCRIPTION"}
	if mine {
		header = []string{"ID", "QUERY", "EXPIRES", "MATCHES", "DESCRIPTION"}
	}
	rows := make([][]string, 0, len(ws))
	for _, w := range ws {
		q, d := w.Query, w.Description
		if !noTrunc {
			q, d = truncate(q, 50), truncate(d, maxNameWidth)
		}
		exp := w.Expires.Local().Format("2006-01-02 15:04")
		if mine {
			rows = append(rows, []string{ids(w.ID, noTrunc), sanitize(q), exp, strconv.Itoa(len(w.Matches)), sanitize(d)})
		} else {
			rows = append(rows, []string{ids(w.ID, noTrunc), ids(w.Owner, noTrunc), sanitize(q), exp, sanitize(d)})
		}
	}
	if err := a.printTable(header, rows); err != nil {
		return err
	}
	if !mine {
		return nil
	}
	for _, w := range ws {
		for _, r := range w.Matches {
			name := r.Name
			if !noTrunc {
				name = truncate(name, maxNameWidth)
			}
			if _, err := fmt.Fprintf(a.stdout, "%s matched by %s  %s  %s  (%s)\n", ids(w.ID, noTrunc),
				ids(r.ID, noTrunc), r.Kind, sanitize(name), ids(r.Owner, noTrunc)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *app) unwantCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unwant ID",
		Short: "Withdraw one of your wants",
		Args:  exactArgs(1, "the want's ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Unwant(ctx, args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "withdrew want %s\n", args[0])
				return err
			})
		},
	}
}
