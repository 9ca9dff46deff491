package pgwire

import "encoding/binary"

// DrawsAnswers reports whether frontend messages, back to back, make the server answer without
// another client message: a simple Query, FunctionCall, Sync, Flush, or the end of COPY data
// (CopyDone, CopyFail). Parse, Bind, Describe, Execute, Close and CopyData alone wait for one.
func DrawsAnswers(frames []byte) bool {
	for i := 0; i+5 <= len(frames); {
		switch frames[i] {
		case 'Q', 'S', 'H', 'F', 'c', 'f':
			return true
		}
		n := int(binary.BigEndian.Uint32(frames[i+1:]))
		if n < 4 {
			return false
		}
		i += 1 + n
	}
	return false
}
