package grip

import "errors"

// Errors callers may test for with errors.Is.
var (
	// ErrInvalidInstruct matches every *InstructError.
	ErrInvalidInstruct = errors.New("invalid grip instruct")
	// ErrInvalidControl matches every WebSocket control-message parse error.
	ErrInvalidControl = errors.New("invalid grip control message")
	// ErrInvalidSig is returned when a Grip-Sig token does not verify.
	ErrInvalidSig = errors.New("invalid grip signature")
	// ErrKey is returned for an unusable sig_key/upstream_key.
	ErrKey = errors.New("invalid grip key")
)

// InstructError is a GRIP response the handler cannot act on. Msg is
// Pushpin's own text (e.g. "Grip-Hold must be set to either 'response' or
// 'stream'"), which a route with `debug` sends to the client as the 502 body,
// so Error returns it unprefixed.
type InstructError struct {
	Msg string
}

func (e *InstructError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrInvalidInstruct) true.
func (e *InstructError) Is(target error) bool { return target == ErrInvalidInstruct }

func instructErr(msg string) error { return &InstructError{Msg: msg} }
