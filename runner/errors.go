package runner

import "errors"

var (
	// ErrServiceExited is returned by Run when a child ended while the
	// runner was not stopping; the message names the service.
	ErrServiceExited = errors.New("service exited unexpectedly")
	// ErrProgramNotFound: a service's executable is neither next to the
	// runner nor on PATH.
	ErrProgramNotFound = errors.New("program not found")
	// ErrNoServices: [runner] services is empty, so there is nothing to run.
	ErrNoServices = errors.New("no services configured ([runner] services)")
	// ErrStartFailed wraps a failure to start a child.
	ErrStartFailed = errors.New("service failed to start")
)
