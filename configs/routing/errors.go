package routing

import "errors"

// Errors for conditions callers may test; *LineError wraps them.
var (
	ErrDuplicateCondition = errors.New("duplicate condition")
	ErrNoTargets          = errors.New("no targets")
	ErrNoID               = errors.New("route without a domain must have an id")
)
