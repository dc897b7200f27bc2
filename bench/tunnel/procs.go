package main

// Child processes and their CPU time.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process: a role of this binary, sshd or ssh.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string // stdout, line by line; closed at EOF
	errPath string      // stderr goes to this file
}

// procs starts children and, whatever happens, kills them all: each runs
// in a process group of its own, which is killed, as are all of its
// descendants that left the group (sshd's per-connection processes do).
type procs struct {
	ctx context.Context
	dir string

	mu   sync.Mutex
	list []*proc
}

func newProcs(ctx context.Context, dir string) *procs { return &procs{ctx: ctx, dir: dir} }

// role starts this binary in a role.
func (ps *procs) role(name, role string, args ...string) (*proc, error) {
	return ps.roleEnv(name, role, nil, args...)
}

// roleEnv starts this binary in a role with env added to its environment.
func (ps *procs) roleEnv(name, role string, env []string, args ...string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return ps.startEnv(name, env, self, append([]string{"-role", role}, args...)...)
}

func (ps *procs) start(name, path string, args ...string) (*proc, error) {
	return ps.startEnv(name, nil, path, args...)
}

func (ps *procs) startEnv(name string, env []string, path string, args ...string) (*proc, error) {
	cmd := exec.CommandContext(ps.ctx, path, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killTree(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 64), errPath: filepath.Join(ps.dir, name+".stderr")}
	ef, err := os.Create(p.errPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = ef
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		ef.Close()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		ef.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		ef.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ef.Close() // the child has it
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// recv decodes the next stdout line into v.
func (p *proc) recv(v any, timeout time.Duration) error {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return fmt.Errorf("%s ended: %s", p.name, p.stderrTail())
		}
		if err := json.Unmarshal([]byte(line), v); err != nil {
			return fmt.Errorf("%s said %q: %w", p.name, line, err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s: no answer in %s: %w; stderr: %s", p.name, timeout, errTimeout, p.stderrTail())
	}
}

func (p *proc) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = p.stdin.Write(append(b, '\n'))
	return err
}

func (p *proc) stderrTail() string {
	b, _ := os.ReadFile(p.errPath)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// stop closes the child's stdin (roles exit on that), waits a little,
// then kills what is left.
func (ps *procs) stop(p *proc) {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	killTree(p.pid())
	<-done
	ps.mu.Lock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			break
		}
	}
	ps.mu.Unlock()
}

// stopAll kills every child still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for _, p := range list {
		ps.stop(p)
	}
}

// killTree kills pid's process group and every descendant of pid.
func killTree(pid int) error {
	for _, d := range descendants([]int{pid}) {
		if d != pid {
			syscall.Kill(d, syscall.SIGKILL)
		}
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	return syscall.Kill(pid, syscall.SIGKILL)
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go runs on.
const clockTicks = 100

// procStat reads the parent and the user+system CPU ticks of pid (all its
// threads, live and ended).
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, state
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, ut + st, true
}

// descendants lists roots and every process below them.
func descendants(roots []int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(pid); ok {
			children[pp] = append(children[pp], pid)
		}
	}
	var out []int
	seen := map[int]bool{}
	var walk func(int)
	walk = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		out = append(out, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

// cpuSnap is the CPU ticks of a set of processes and their descendants at
// one moment.
type cpuSnap map[int]int64

func snapCPU(roots []int) cpuSnap {
	s := cpuSnap{}
	for _, p := range descendants(roots) {
		if _, t, ok := procStat(p); ok {
			s[p] = t
		}
	}
	return s
}

// cpuSince is the CPU seconds the processes in after used since before.
// Processes that started in between count from zero; any that ended in
// between are lost (none do on these paths: sshd's session processes and
// the nodes live as long as the path).
func cpuSince(before, after cpuSnap) float64 {
	var t int64
	for p, a := range after {
		t += a - before[p]
	}
	return float64(t) / clockTicks
}

func pids(ps ...*proc) []int {
	out := make([]int, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.pid())
	}
	return out
}
