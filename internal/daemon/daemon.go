// Package daemon is pulld: the command line of the pullnet daemon and the
// loop that runs a node.Node behind the control API on a unix socket.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/internal/config"
	"github.com/pullnet/pullnet/internal/control"
	"github.com/pullnet/pullnet/internal/datadir"
	"github.com/pullnet/pullnet/internal/store"
	"github.com/pullnet/pullnet/internal/watches"
	"github.com/pullnet/pullnet/node"
)

// Main runs pulld with args (without the program name) and returns its exit
// code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd(stdout, stderr)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "pulld: %s\n", oneLine(err))
		return 1
	}
	return 0
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var dataDir string
	root := &cobra.Command{
		Use:           "pulld",
		Short:         "pulld is the pullnet daemon: it advertises, finds and connects resources on a hub-free network",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&dataDir, "data", datadir.Default(), "data directory (identity key, config.toml, store, control socket); $"+datadir.EnvVar+" sets the default")

	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the data directory with a new identity and a default config, and print the peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := datadir.Open(dataDir)
			if err != nil {
				return err
			}
			verb := "using existing"
			if d.Created() {
				verb = "created"
			}
			fmt.Fprintf(stdout, "%s data directory %s\npeer ID: %s\n", verb, d.Path(), d.PeerID())
			return nil
		},
	}

	var fl runFlags
	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon in the foreground until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, dataDir, fl, cmd.Flags().Changed, stderr)
		},
	}
	runCmd.Flags().StringArrayVar(&fl.listen, "listen", nil, "multiaddr to listen on (repeatable; replaces the config's listen)")
	runCmd.Flags().StringArrayVar(&fl.bootstrap, "bootstrap", nil, "peer to join through, a multiaddr ending in /p2p/ID (repeatable; replaces the config's bootstrap)")
	runCmd.Flags().BoolVar(&fl.noMDNS, "no-mdns", false, "do not discover peers on the local network")
	runCmd.Flags().StringVar(&fl.policy, "policy", "", "connect policy: open, allowlist or manual (overrides the config)")
	runCmd.Flags().StringVar(&fl.logLevel, "log-level", "", "debug, info, warn or error (overrides the config)")
	runCmd.Flags().StringVar(&fl.logFormat, "log-format", "", "text or json (overrides the config)")
	runCmd.Flags().BoolVar(&fl.relayService, "relay-service", false, "relay traffic for peers behind NAT (circuit relay v2)")
	runCmd.Flags().DurationVar(&fl.watchRefind, "watch-refind", 0, "how often watches re-run their query as a find (default 1m)")
	runCmd.Flags().StringVar(&fl.dhtMode, "dht-mode", "", "server, client or auto (overrides the config; auto or client behind NAT)")

	configCmd := &cobra.Command{Use: "config", Short: "Inspect the configuration file"}
	configCmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check DATA/config.toml and report the first error with its line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(dataDir, datadir.ConfigFile)
			if _, err := config.Load(path); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", path)
			return nil
		},
	})
	root.AddCommand(initCmd, runCmd, configCmd, &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "pulld", node.Version) },
	})
	return root
}

type runFlags struct {
	listen, bootstrap   []string
	noMDNS              bool
	policy              string
	logLevel, logFormat string
	relayService        bool
	dhtMode             string
	watchRefind         time.Duration
}

// merge applies the flags the user set over the config file: flags win.
func (fl runFlags) merge(cfg config.Config, changed func(string) bool) config.Config {
	if changed("listen") {
		cfg.Listen = fl.listen
	}
	if changed("bootstrap") {
		cfg.Bootstrap = fl.bootstrap
	}
	if fl.noMDNS {
		off := false
		cfg.MDNS = &off
	}
	if fl.policy != "" {
		cfg.Policy = fl.policy
	}
	if fl.logLevel != "" {
		cfg.LogLevel = fl.logLevel
	}
	if fl.logFormat != "" {
		cfg.LogFormat = fl.logFormat
	}
	if fl.relayService {
		cfg.RelayService = true
	}
	if fl.dhtMode != "" {
		cfg.DHTMode = fl.dhtMode
	}
	if fl.watchRefind > 0 {
		cfg.WatchRefind.Duration = fl.watchRefind
	}
	return cfg
}

func run(ctx context.Context, dir string, fl runFlags, changed func(string) bool, stderr io.Writer) error {
	d, err := datadir.Open(dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(d.ConfigPath())
	if err != nil {
		return err
	}
	cfg = fl.merge(cfg, changed)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	cfg = cfg.WithDefaults()
	log := newLogger(cfg, stderr)
	ncfg, err := nodeConfig(d, cfg, log)
	if err != nil {
		return err
	}
	// The daemon opens the node's store itself, to keep its watches there
	// too. It is closed after the node.
	dstore, err := store.OpenPebble(filepath.Join(d.Path(), datadir.StoreDir))
	if err != nil {
		return err
	}
	defer dstore.Close()
	ncfg.Datastore = dstore
	n, err := node.New(ctx, ncfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := n.Close(); err != nil {
			log.Error("shutdown", "err", err)
		}
		log.Info("stopped")
	}()
	reg := watches.New(dstore, n, log.With("part", "watches"))
	defer reg.Close()
	if err := reg.Start(ctx); err != nil {
		return err
	}
	// Stopping the watches ends their streams, so the control API drains.
	context.AfterFunc(ctx, func() { reg.Close() })

	path, h := control.NewHandler(n, control.Options{DataDir: d.Path(), Version: node.Version, Logger: log.With("part", "control"), Watches: reg})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	log.Info("pulld ready", "peer", n.ID(), "socket", d.SocketPath(), "addrs", fmt.Sprint(n.Addrs()))
	if err := control.Serve(ctx, d.SocketPath(), mux, log.With("part", "control")); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("shutting down")
	return nil
}

func nodeConfig(d *datadir.Dir, cfg config.Config, log *slog.Logger) (node.Config, error) {
	nc := node.Config{
		DataDir:           d.Path(),
		Key:               d.Key(),
		MDNS:              cfg.MDNSEnabled(),
		ApprovalTimeout:   cfg.ApprovalTimeout.Duration,
		ReprovideInterval: cfg.ReprovideInterval.Duration,
		Logger:            log,
		Policy:            node.Policy{Mode: cfg.Policy, MinTrust: cfg.MinTrust},
		RelayService:      cfg.RelayService,
		DHTMode:           cfg.DHTMode,
		RecordQueries:     cfg.RecordQueries,
		WatchRefind:       cfg.WatchRefind.Duration,
	}
	for _, s := range cfg.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nc, fmt.Errorf("listen %q: %w", s, err)
		}
		nc.ListenAddrs = append(nc.ListenAddrs, a)
	}
	// Addresses of one peer are grouped into one AddrInfo, so the node dials
	// it once over its best transport rather than racing two connections
	// (which can leave two NATed peers on different transports, with
	// nothing in common for hole punching).
	var boot []ma.Multiaddr
	for _, s := range cfg.Bootstrap {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nc, fmt.Errorf("bootstrap %q: %w", s, err)
		}
		boot = append(boot, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(boot...)
	if err != nil {
		return nc, fmt.Errorf("bootstrap: %w", err)
	}
	nc.Bootstrap = infos
	for _, s := range cfg.Allow {
		p, err := peer.Decode(s)
		if err != nil {
			return nc, fmt.Errorf("allow %q: %w", s, err)
		}
		nc.Policy.Allow = append(nc.Policy.Allow, p)
	}
	return nc, nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
