package peerctl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
	"github.com/pullnet/pullnet/resource"
)

// maxNameWidth is how much of a resource's name a table shows unless
// --no-trunc.
const maxNameWidth = 40

// addNoTrunc adds the --no-trunc flag of the commands that print IDs in
// columns.
func (a *app) addNoTrunc(cmd *cobra.Command, noTrunc *bool) {
	cmd.Flags().BoolVar(noTrunc, "no-trunc", false, "show whole IDs and names")
}

// ids abbreviates id for a column unless noTrunc.
func ids(id string, noTrunc bool) string {
	if noTrunc {
		return id
	}
	return shortID(id)
}

// call runs fn with the daemon's client and a context bounded by
// callTimeout.
func (a *app) call(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := a.dial()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), callTimeout)
	defer cancel()
	return fn(ctx, c)
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show who the daemon is and how it is connected",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(st)
				}
				return a.printStatus(st)
			})
		},
	}
}

// policyText is the policy's mode, with its trust floor when it has one.
func policyText(st client.Status) string {
	if st.MinTrust == 0 {
		return st.Policy
	}
	return fmt.Sprintf("%s, min trust %s", st.Policy, formatTrust(st.MinTrust))
}

func (a *app) printStatus(st client.Status) error {
	rows := [][]string{{"peer id", st.PeerID}}
	rows = appendList(rows, "addrs", st.Addrs)
	rows = append(rows, []string{"reachability", st.Reachability})
	rows = appendList(rows, "relay addrs", st.RelayAddrs)
	rows = append(rows,
		[]string{"peers", strconv.Itoa(st.Peers)},
		[]string{"resources", strconv.Itoa(st.Resources)},
		[]string{"policy", policyText(st)},
		[]string{"version", st.Version},
		[]string{"data dir", st.DataDir},
	)
	return a.printRows(rows)
}

// appendList adds a row for each item of list, labelled by the first, or
// one row of "-" for an empty list.
func appendList(rows [][]string, label string, list []string) [][]string {
	if len(list) == 0 {
		return append(rows, []string{label, "-"})
	}
	rows = append(rows, []string{label, list[0]})
	for _, item := range list[1:] {
		rows = append(rows, []string{"", item})
	}
	return rows
}

func (a *app) peersCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the peers the daemon is connected to",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				peers, err := c.Peers(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(peers)
				}
				if len(peers) == 0 {
					a.note("no peers connected")
					return nil
				}
				rows := make([][]string, 0, len(peers))
				for _, p := range peers {
					addr := "-"
					if len(p.Addrs) > 0 {
						addr = p.Addrs[0]
					}
					path, transport := "direct", p.Transport
					if p.Relayed {
						path = "relayed"
					}
					if transport == "" {
						transport = "-"
					}
					rows = append(rows, []string{ids(p.PeerID, noTrunc), p.Direction, path, transport, formatMS(p.LatencyMS), addr})
				}
				return a.printTable([]string{"PEER", "DIRECTION", "PATH", "TRANSPORT", "LATENCY", "ADDR"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) lsCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the resources this daemon advertises",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				rs, err := c.Resources(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(rs)
				}
				if len(rs) == 0 {
					a.note("no resources; add one with 'peerctl advertise'")
					return nil
				}
				rows := make([][]string, 0, len(rs))
				for _, r := range rs {
					rows = append(rows, []string{ids(r.ID, noTrunc), r.Kind, a.name(r, noTrunc), strings.Join(r.Tags, ","), strconv.FormatUint(r.Seq, 10)})
				}
				return a.printTable([]string{"ID", "KIND", "NAME", "TAGS", "SEQ"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) name(r resource.Resource, noTrunc bool) string {
	if noTrunc {
		return r.Name
	}
	return truncate(r.Name, maxNameWidth)
}

func (a *app) withdrawCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "withdraw ID",
		Short:             "Stop advertising one of this daemon's resources",
		Args:              exactArgs(1, "the resource ID"),
		ValidArgsFunction: a.completeOwnIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Withdraw(ctx, args[0]); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(struct {
						ID string `json:"id"`
					}{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "withdrew %s\n", args[0])
				return err
			})
		},
	}
}

func (a *app) requestsCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "List connect requests waiting for your decision",
		Long: `List connect requests waiting for your decision. They wait only under the
manual policy; answer each with 'peerctl approve' or 'peerctl decline'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				reqs, err := c.Requests(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(reqs)
				}
				if len(reqs) == 0 {
					a.note("no requests waiting")
					return nil
				}
				now := time.Now()
				rows := make([][]string, 0, len(reqs))
				for _, r := range reqs {
					msg := r.Message
					if !noTrunc {
						msg = truncate(msg, maxNameWidth)
					}
					rows = append(rows, []string{r.Session, ids(r.ResourceID, noTrunc), ids(r.Consumer, noTrunc), formatAge(r.Received, now), msg})
				}
				return a.printTable([]string{"SESSION", "RESOURCE", "CONSUMER", "AGE", "MESSAGE"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

type sessionOutput struct {
	Session string `json:"session"`
}

func (a *app) approveCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "approve SESSION",
		Short:             "Grant a waiting connect request",
		Args:              exactArgs(1, "the request's SESSION"),
		ValidArgsFunction: a.completeSessions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Approve(ctx, args[0]); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(sessionOutput{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "approved %s\n", args[0])
				return err
			})
		},
	}
}

func (a *app) declineCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "decline SESSION [--reason R]",
		Short:             "Refuse a waiting connect request",
		Args:              exactArgs(1, "the request's SESSION"),
		ValidArgsFunction: a.completeSessions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Decline(ctx, args[0], reason); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(sessionOutput{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "declined %s\n", args[0])
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, as the consumer will see it")
	return cmd
}

// completeOwnIDs completes the IDs of the daemon's own resources, with
// their names as descriptions.
func (a *app) completeOwnIDs(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	if len(args) == 0 {
		a.call(cmd, func(ctx context.Context, c *client.Client) error {
			rs, err := c.Resources(ctx)
			for _, r := range rs {
				out = append(out, cobra.CompletionWithDesc(r.ID, r.Kind+": "+sanitize(r.Name)))
			}
			return err
		})
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeSessions completes the sessions of waiting connect requests.
func (a *app) completeSessions(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	if len(args) == 0 {
		a.call(cmd, func(ctx context.Context, c *client.Client) error {
			reqs, err := c.Requests(ctx)
			for _, r := range reqs {
				out = append(out, cobra.CompletionWithDesc(r.Session, shortID(r.Consumer)+": "+sanitize(r.Message)))
			}
			return err
		})
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
