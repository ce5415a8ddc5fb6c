package proxy

import "errors"

// Errors callers may test for.
var (
	// ErrConfig wraps every configuration problem New reports.
	ErrConfig = errors.New("proxy: bad configuration")
)

// Texts of the error responses Pushpin 1.36 sends (grip.md §2, config.md §7.4).
const (
	textProxyError   = "Error while proxying to origin.\n"
	textNoRoute      = "No route for host: "
	textLengthNeeded = "Must provide Content-Length header.\n"
)
