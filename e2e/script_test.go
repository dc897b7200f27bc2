package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
			env.Values[varsKey{}] = &[]string{"WORK", "HOME", "PATH"}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready":  waitReady,
			"exitcode":   exitCode,
			"eventually": eventually,
			"setjson":    setJSON,
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
	prog := args[1]
	if p := filepath.Join(binDir, prog); fileExists(p) {
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = scriptEnv(ts)
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

// eventually TIMEOUT PROG ARGS...: run PROG until it exits 0, at most for
// TIMEOUT (a Go duration).
func eventually(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: eventually TIMEOUT PROG [ARGS...]")
	}
	timeout, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("eventually: %v", err)
	}
	prog := args[1]
	if p := filepath.Join(binDir, prog); fileExists(p) {
		prog = p
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cmd := exec.Command(prog, args[2:]...)
		cmd.Dir = ts.Getenv("WORK")
		cmd.Env = scriptEnv(ts)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			ts.Fatalf("%v did not succeed within %v; last: %v\n%s", args[1:], timeout, err, out)
		case <-tick.C:
		}
	}
}

// setjson VAR PATH: set VAR to the value at PATH (dot-separated keys and
// array indexes, e.g. addrs.0) of the JSON on the last command's stdout.
func setJSON(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setjson VAR PATH")
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile("stdout")))
	if err := dec.Decode(&v); err != nil {
		ts.Fatalf("setjson: stdout is not JSON: %v", err)
	}
	for _, k := range strings.Split(args[1], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(x) {
				ts.Fatalf("setjson: no element %q in %v", k, x)
			}
			v = x[i]
		default:
			ts.Fatalf("setjson: %q: not an object or array: %v", k, v)
		}
	}
	s, ok := v.(string)
	if !ok {
		ts.Fatalf("setjson: %s is %v, not a string", args[1], v)
	}
	ts.Setenv(args[0], s)
	vars := ts.Value(varsKey{}).(*[]string)
	*vars = append(*vars, args[0])
}

// varsKey keys the list of variables that commands run by the custom
// commands see (the script's own environment is not exposed to them).
type varsKey struct{}

// scriptEnv is the environment for a process run by a custom command.
func scriptEnv(ts *testscript.TestScript) []string {
	env := os.Environ()
	for _, k := range *ts.Value(varsKey{}).(*[]string) {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return env
}
