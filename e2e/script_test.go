package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the CLI behaviour tests in testdata/script: each txtar
// file is a script of pulld and peerctl commands (the real binaries) and the
// output and exit codes they must give.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("HOME", env.WorkDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready": waitReady,
			"exitcode":  exitCode,
		},
	})
}

// waitready DATA: poll `peerctl --data DATA status` until the daemon answers
// (30 s at most).
func waitReady(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitready DATA")
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		cmd := exec.Command(filepath.Join(binDir, "peerctl"), "--data", ts.MkAbs(args[0]), "status")
		if cmd.Run() == nil {
			return
		}
		select {
		case <-deadline:
			ts.Fatalf("no daemon answered on %s within 30s", args[0])
		case <-tick.C:
		}
	}
}

// exitcode N PROG ARGS...: run PROG and check that it exits with code N.
// Its stdout and stderr become the script's, as with exec.
func exitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[1], args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"))
	if p := filepath.Join(binDir, args[1]); fileExists(p) {
		cmd.Path = p
	}
	var stdout, stderr sbuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	ts.Logf("[exitcode %d] %v\n%s%s", want, args[1:], stdout.String(), stderr.String())
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	// Let stdout/stderr checks that follow see this command's output.
	ts.Check(os.WriteFile(ts.MkAbs(".exitcode.stdout"), []byte(stdout.String()), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(".exitcode.stderr"), []byte(stderr.String()), 0o644))
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

type sbuf struct{ b []byte }

func (s *sbuf) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
func (s *sbuf) String() string              { return string(s.b) }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
