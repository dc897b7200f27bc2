// Package peerctl is pullnet's command-line client, as a library: Main is
// all that cmd/peerctl runs, and Run lets tests drive the same commands
// in-process.
//
// peerctl is a thin client of a running pulld's control API (see
// peerctl/client). Every command prints either aligned text for people or,
// with -o json, JSON for scripts (NDJSON for find), and exits with a
// meaningful code: 0 on success, 1 when find matched nothing or connect was
// declined, 2 on any error, with a one-line reason on stderr.
package peerctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pullnet/pullnet/peerctl/client"
)

// EnvData is the environment variable that sets the data directory when
// --data is not given.
const EnvData = "PULLNET_DATA"

// Exit codes.
const (
	ExitOK    = 0
	ExitNone  = 1 // find matched nothing; connect was declined
	ExitError = 2
)

// callTimeout is a safety net for calls the daemon answers without waiting
// on a provider; it only matters if the daemon hangs.
const callTimeout = 2 * time.Minute

// Main runs peerctl with the process's arguments and standard streams and
// returns its exit code. An interrupt or SIGTERM cancels the command.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs peerctl with args (without the program name), writing to stdout
// and stderr, and returns its exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if a.client != nil {
		a.client.Close()
	}
	return a.exit(ctx, cmd, err)
}

// app is one run of peerctl: its streams, global flags and client.
type app struct {
	stdout, stderr io.Writer

	dataDir string
	output  string

	// started is set once flags and arguments have been accepted, so errors
	// before it are usage errors.
	started bool
	client  *client.Client
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "peerctl",
		Short: "Control a running pulld",
		Long: `peerctl controls a running pulld through its control socket: advertise what
you offer, find what others offer, connect to it, and reach a TCP service
through a local port (forward).

Every command takes -o json for scripts (find prints one JSON object per
line). Exit codes: 0 success, 1 nothing found or connect declined, 2 error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != outputText && a.output != outputJSON {
				return usageErrorf("--output %q: want text or json", a.output)
			}
			a.started = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	// The default is resolved when it is needed, so that --help shows the
	// rule rather than one user's home directory.
	pf.StringVar(&a.dataDir, "data", "", "pulld's data directory (default $"+EnvData+", else ~/.pullnet)")
	pf.StringVarP(&a.output, "output", "o", outputText, "output format: text or json")
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputText, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	root.MarkPersistentFlagDirname("data")

	root.AddCommand(
		a.statusCommand(),
		a.peersCommand(),
		a.lsCommand(),
		a.advertiseCommand(),
		a.withdrawCommand(),
		a.findCommand(),
		a.connectCommand(),
		a.requestsCommand(),
		a.approveCommand(),
		a.declineCommand(),
		a.forwardCommand(),
		a.forwardsCommand(),
		a.closeCommand(),
		a.sessionsCommand(),
		a.revokeCommand(),
		a.lineageCommand(), a.demandCommand(),
		a.doctorCommand(),
		a.watchCommand(), a.watchesCommand(), a.unwatchCommand(),
		a.wantCommand(), a.wantsCommand(), a.unwantCommand(),
		a.rateCommand(), a.ratingsCommand(), a.trustCommand(),
	)
	return root
}

// defaultDataDir is $PULLNET_DATA, else ~/.pullnet. It is "" when neither
// can be known; the commands then ask for --data.
func defaultDataDir() string {
	if d := os.Getenv(EnvData); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".pullnet")
}

// dial returns the client of the daemon in the data directory.
func (a *app) dial() (*client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	dir := a.dataDir
	if dir == "" {
		dir = defaultDataDir()
	}
	if dir == "" {
		return nil, usageErrorf("no data directory: give --data or set $%s", EnvData)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	a.client = client.New(client.SocketPath(dir))
	return a.client, nil
}

// exitError ends a command with a code other than 2. Its message, if any,
// is printed like an error's.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// usageError is a command line peerctl cannot run: a bad flag, a missing
// argument.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func (a *app) exit(ctx context.Context, cmd *cobra.Command, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			a.printError(ee.msg)
		}
		return ee.code
	}
	msg := err.Error()
	var ue usageError
	switch {
	case errors.As(err, &ue) || !a.started:
		path := "peerctl"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		msg += fmt.Sprintf(" (see '%s --help')", path)
	case ctx.Err() != nil:
		// Whatever the call made of it, the cause was the interrupt.
		msg = "interrupted"
	}
	a.printError(msg)
	return ExitError
}

// printError writes msg to stderr as the one line that explains a failure.
func (a *app) printError(msg string) {
	fmt.Fprintf(a.stderr, "peerctl: %s\n", strings.Join(strings.Fields(msg), " "))
}

// noArgs is cobra.NoArgs with a usage error that shows the stray argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no arguments, got %q", cmd.Name(), args[0])
	}
	return nil
}

// exactArgs is cobra.ExactArgs with usage errors that name what is missing
// or show what is extra.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageErrorf("%s: missing %s", cmd.Name(), what)
		case len(args) > n:
			return usageErrorf("%s takes only %s; unexpected %q", cmd.Name(), what, args[n])
		}
		return nil
	}
}
