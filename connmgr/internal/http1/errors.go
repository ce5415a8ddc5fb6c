package http1

import "errors"

// ErrIncomplete means the input ends before the request head (or a chunk
// size line) does: read more and call again.
var ErrIncomplete = errors.New("http1: incomplete input")

// Error is a request the server must refuse; Code and Reason are the status
// to answer with before closing the connection.
type Error struct {
	Code   int
	Reason string
	Msg    string
}

func (e *Error) Error() string { return "http1: " + e.Msg }

// Is lets errors.Is match any *Error against one of the sentinels below by
// status code, so callers can test the class without the detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Sentinel classes (match with errors.Is).
var (
	ErrBadRequest         = &Error{Code: 400, Reason: "Bad Request"}
	ErrHeadTooLarge       = &Error{Code: 431, Reason: "Request Header Fields Too Large"}
	ErrBodyTooLarge       = &Error{Code: 413, Reason: "Content Too Large"}
	ErrNotImplemented     = &Error{Code: 501, Reason: "Not Implemented"}
	ErrVersionUnsupported = &Error{Code: 505, Reason: "HTTP Version Not Supported"}
)

func bad(msg string) error { return &Error{Code: 400, Reason: "Bad Request", Msg: msg} }

func classed(class *Error, msg string) error {
	return &Error{Code: class.Code, Reason: class.Reason, Msg: msg}
}
