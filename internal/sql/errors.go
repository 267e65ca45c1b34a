package sql

import "fmt"

// ParseError is the error that Parse and its siblings return for text that
// is not valid in the dialect. It describes the first error only.
type ParseError struct {
	Pos Pos    // where the error is: the offending token or character
	Msg string // what was expected and what was found
}

// Error returns the message prefixed with the line and column:
//
//	line 3, column 14: expected ")" after the expectation, found "ON"
func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
}
