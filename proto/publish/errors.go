package publish

import "errors"

// Error kinds, matched with errors.Is against an *Error.
var (
	// ErrNotJSON: an HTTP API body that is not JSON ("Body is not valid JSON.").
	ErrNotJSON = errors.New("publish body is not valid json")
	// ErrInvalidFormat: well-formed input that is not a valid publish request.
	ErrInvalidFormat = errors.New("invalid publish format")
	// ErrInvalidFrame: a ZeroMQ publish frame that cannot be decoded at all.
	ErrInvalidFrame = errors.New("invalid publish frame")
)

// Error is rejected publish input. Text is exactly what Pushpin 1.36 sends
// back: the HTTP API's 400 body without its trailing newline, and the
// command socket's `value` (e.g. "Invalid format: publish item object does
// not contain 'channel'"). Message is the part after "Invalid format: "
// (publish.md §1.4), empty for the whole-body errors.
type Error struct {
	Text    string
	Message string
	kind    error
}

func (e *Error) Error() string { return e.Text }

// Unwrap exposes the error kind (ErrNotJSON, ErrInvalidFormat, ErrInvalidFrame).
func (e *Error) Unwrap() error { return e.kind }

// formatErr builds the common "Invalid format: <msg>" error.
func formatErr(msg string) *Error {
	return &Error{Text: "Invalid format: " + msg, Message: msg, kind: ErrInvalidFormat}
}

var (
	errNotJSON   = &Error{Text: "Body is not valid JSON.", kind: ErrNotJSON}
	errNotObject = &Error{Text: "Invalid format.", kind: ErrInvalidFormat}
)
