package zurl

import "errors"

// Errors callers and tests can test for.
var (
	// ErrConfig is wrapped by New when a setting cannot be used.
	ErrConfig = errors.New("zurl: bad configuration")
	// ErrPolicy is returned by the dialer and redirect check when a host
	// is denied by the allow/deny policy (zhttp condition policy-violation).
	ErrPolicy = errors.New("denied by policy")
	// ErrTooManyRedirects ends a request that followed more than
	// maxRedirects redirects.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrMaxSize ends a response larger than the request's max-size.
	ErrMaxSize = errors.New("response exceeds max-size")
	// errBadRequest is a request zurl cannot make as asked (condition
	// bad-request), found after the first packet was accepted.
	errBadRequest = errors.New("bad request")
)
