package runner

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// child is one started service. Its wait goroutine alone writes err and
// closes done; everything else only reads after done.
type child struct {
	svc    Service
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	copied chan struct{} // closed when the output copier has finished
}

// startChild starts svc with its output going to svc.LogFile, or labelled
// onto out. exits receives the child once it has ended and been reaped.
func startChild(svc Service, out io.Writer, env []string, exits chan<- *child) (*child, error) {
	cmd := exec.Command(svc.Path, svc.Args...)
	cmd.Env = env
	// If the runner dies without stopping its children (SIGKILL, crash),
	// the kernel asks them to stop instead of leaving them orphaned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	c := &child{svc: svc, cmd: cmd, done: make(chan struct{}), copied: make(chan struct{})}

	var logf, pr, pw *os.File
	if svc.LogFile != "" {
		f, err := os.OpenFile(svc.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: opening log: %w", ErrStartFailed, svc.Name, err)
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		var err error
		pr, pw, err = os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrStartFailed, svc.Name, err)
		}
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	closeAll := func() {
		for _, f := range []*os.File{logf, pr, pw} {
			if f != nil {
				f.Close()
			}
		}
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: %s (%s): %w", ErrStartFailed, svc.Name, svc.Path, err)
	}
	if pw != nil {
		pw.Close() // the child holds its own copy; EOF comes when it exits
		go func() {
			defer close(c.copied)
			defer pr.Close()
			_ = copyLabelled(out, pr, svc.Label)
		}()
	} else {
		close(c.copied)
	}
	if svc.PIDFile != "" {
		// A missing pid file only hurts external tooling; the runner itself
		// tracks the process, so failing to write one is not fatal.
		_ = os.WriteFile(svc.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	}
	go func() {
		c.err = cmd.Wait()
		<-c.copied
		if logf != nil {
			logf.Close()
		}
		if svc.PIDFile != "" {
			_ = os.Remove(svc.PIDFile)
		}
		close(c.done)
		exits <- c
	}()
	return c, nil
}

// signal sends sig unless the child has already been reaped (its pid may
// then belong to another process).
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(sig)
	}
}

// exited reports whether the child has been reaped.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitDesc describes how the child ended, for logs and errors.
func (c *child) exitDesc() string {
	if c.err == nil {
		return "exit status 0"
	}
	return c.err.Error()
}
