package peerctl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

func (a *app) watchCommand() *cobra.Command {
	var (
		existing bool
		id       string
		noTrunc  bool
	)
	cmd := &cobra.Command{
		Use:   "watch QUERY...",
		Short: "Stream the changes to what matches a query, anywhere in the network",
		Long: `Watch the network for resources matching a query: print an event each time
one appears (added), changes (updated) or disappears (removed), until
interrupted. The arguments, joined by spaces, form the query, as for find.
With --existing, the current matches come first, as added events.

The watch belongs to the daemon: it keeps running, and counting, after
peerctl stops and across restarts of the daemon. Attach to it again with
--id, list the watches with 'peerctl watches' and remove one with
'peerctl unwatch'. Watching the same query twice attaches to the same watch.

With -o json, each event is one line of JSON (NDJSON): watch_id, type,
resource, provider, at. The first line, of type "started", carries only the
watch's ID: from then on the watch is in place.`,
		Example: `  peerctl watch kind:compute tag:gpu
  peerctl watch 'kind:dataset lang:en' --existing -o json
  peerctl watch --id w1a2b3c4d5e6`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && id == "" {
				return usageErrorf("watch: missing the QUERY (or --id of a watch to attach to)")
			}
			if len(args) > 0 && id != "" {
				return usageErrorf("watch: give a QUERY or --id, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			return a.watch(cmd.Context(), c, client.WatchOptions{Query: strings.Join(args, " "), ID: id, Existing: existing}, noTrunc)
		},
	}
	cmd.Flags().BoolVar(&existing, "existing", false, "print the current matches first, as added events")
	cmd.Flags().StringVar(&id, "id", "", "attach to the existing watch with this ID instead of giving a query")
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) watch(ctx context.Context, c *client.Client, opt client.WatchOptions, noTrunc bool) error {
	cols := newWatchColumns(noTrunc)
	for ev, err := range c.Watch(ctx, opt) {
		if err != nil {
			return err
		}
		if a.jsonOut() {
			if err := a.printJSON(ev); err != nil {
				return err
			}
			continue
		}
		if ev.Type == client.WatchStarted {
			what := opt.Query
			if what == "" {
				what = "watch " + ev.WatchID
			}
			a.note("watching %s (watch %s); Ctrl-C stops this stream, 'peerctl unwatch %s' the watch", what, ev.WatchID, ev.WatchID)
			continue
		}
		name := ev.Resource.Name
		if !noTrunc {
			name = truncate(name, maxNameWidth)
		}
		if err := cols.print(a, ev.Type, ids(ev.Resource.ID, noTrunc), ev.Resource.Kind, name, ids(ev.Provider, noTrunc)); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		a.note("the watch was removed")
	}
	return nil
}

// newWatchColumns lays out watch's text output: the event type, then the
// columns of find.
func newWatchColumns(noTrunc bool) findColumns {
	fc := newFindColumns(noTrunc)
	fc.widths = append([]int{len(client.WatchUpdated)}, fc.widths...)
	return fc
}

func (a *app) watchesCommand() *cobra.Command {
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "watches",
		Short: "List the daemon's watches",
		Long: `List the watches the daemon keeps: their ID, query, age, and the events
each has had since the daemon started, with how long ago the last came.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				ws, err := c.Watches(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(ws)
				}
				if len(ws) == 0 {
					a.note("no watches; start one with 'peerctl watch QUERY'")
					return nil
				}
				now := time.Now()
				rows := make([][]string, 0, len(ws))
				for _, w := range ws {
					q := w.Query
					if !noTrunc {
						q = truncate(q, 2*maxNameWidth)
					}
					rows = append(rows, []string{w.ID, q, formatAge(w.Created, now), fmt.Sprint(w.Events), formatAge(w.LastEvent, now)})
				}
				return a.printTable([]string{"ID", "QUERY", "AGE", "EVENTS", "LAST EVENT"}, rows)
			})
		},
	}
	a.addNoTrunc(cmd, &noTrunc)
	return cmd
}

func (a *app) unwatchCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "unwatch ID",
		Short:             "Remove one of the daemon's watches",
		Args:              exactArgs(1, "the watch ID (see 'peerctl watches')"),
		ValidArgsFunction: a.completeWatches,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.Unwatch(ctx, args[0]); err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(struct {
						ID string `json:"id"`
					}{args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "removed watch %s\n", args[0])
				return err
			})
		},
	}
}

func (a *app) completeWatches(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	_ = a.call(cmd, func(ctx context.Context, c *client.Client) error {
		ws, err := c.Watches(ctx)
		for _, w := range ws {
			out = append(out, cobra.CompletionWithDesc(w.ID, sanitize(w.Query)))
		}
		return err
	})
	return out, cobra.ShellCompDirectiveNoFileComp
}
