package connmgr

import "errors"

// Errors callers test for.
var (
	// ErrConfig: the command line / Config is invalid.
	ErrConfig = errors.New("connmgr: invalid configuration")
	// ErrNoListener: no usable --listen address.
	ErrNoListener = errors.New("connmgr: no usable listener")
)
