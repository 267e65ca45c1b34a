package sql

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// lexer splits source text into tokens. Whitespace and comments (-- to the
// end of the line, and /* */, which nest) separate tokens and are dropped.
type lexer struct {
	src  string
	off  int // next byte to read
	toks []token

	// position tracking: the line and column of byte posOff
	posOff, line, col int
}

// lex returns the tokens of src, ending with a tEOF token, or the first
// lexical error.
func lex(src string) ([]token, *ParseError) {
	l := &lexer{src: src, line: 1, col: 1, toks: make([]token, 0, len(src)/5+2)}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		if l.off >= len(l.src) {
			l.toks = append(l.toks, token{kind: tEOF, pos: l.pos(l.off)})
			return l.toks, nil
		}
		if err := l.next(); err != nil {
			return nil, err
		}
	}
}

// pos returns the position of byte offset off; offsets must not decrease
// from one call to the next.
func (l *lexer) pos(off int) Pos {
	for l.posOff < off {
		c := l.src[l.posOff]
		switch {
		case c == '\n':
			l.line++
			l.col = 1
			l.posOff++
		case c < utf8.RuneSelf:
			l.col++
			l.posOff++
		default: // one rune, or one byte of invalid UTF-8, as utf8.RuneCount counts
			_, n := utf8.DecodeRuneInString(l.src[l.posOff:])
			l.col++
			l.posOff += n
		}
	}
	return Pos{Offset: off, Line: l.line, Col: l.col}
}

func (l *lexer) errorf(off int, format string, args ...any) *ParseError {
	return &ParseError{Pos: l.pos(off), Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) skipSpace() *ParseError {
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.off++
		case c == '-' && l.peekByte(1) == '-':
			i := strings.IndexByte(l.src[l.off:], '\n')
			if i < 0 {
				l.off = len(l.src)
			} else {
				l.off += i + 1
			}
		case c == '/' && l.peekByte(1) == '*':
			start, depth := l.off, 0
			for {
				if l.off >= len(l.src) {
					return l.errorf(start, "unterminated /* comment")
				}
				if l.src[l.off] == '/' && l.peekByte(1) == '*' {
					depth++
					l.off += 2
				} else if l.src[l.off] == '*' && l.peekByte(1) == '/' {
					depth--
					l.off += 2
					if depth == 0 {
						break
					}
				} else {
					l.off++
				}
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) peekByte(n int) byte {
	if l.off+n < len(l.src) {
		return l.src[l.off+n]
	}
	return 0
}

func (l *lexer) emit(kind tokenKind, start int) {
	text := l.src[start:l.off]
	l.toks = append(l.toks, token{kind: kind, pos: l.pos(start), text: text, val: text})
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(r rune) bool {
	return r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r >= utf8.RuneSelf && unicode.IsLetter(r)
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsDigit(r)
}

// runeAt decodes the rune at byte offset off of src.
func runeAt(src string, off int) (rune, int) {
	if c := src[off]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(src[off:])
}

// next lexes one token at l.off, which is not space.
func (l *lexer) next() *ParseError {
	start := l.off
	c := l.src[start]
	if r, n := runeAt(l.src, start); isIdentStart(r) {
		l.off += n
		l.scanIdentPart()
		l.emit(tIdent, start)
		t := &l.toks[len(l.toks)-1]
		t.kw = lookupKeyword(t.text)
		return nil
	}
	switch {
	case isDigit(c) || c == '.' && isDigit(l.peekByte(1)):
		return l.number()
	case c == '\'' || c == '"':
		return l.quoted(tString, c)
	case c == '`':
		return l.quoted(tQuotedIdent, c)
	}
	kind, n := tEOF, 1
	switch c {
	case '(':
		kind = tLParen
	case ')':
		kind = tRParen
	case '[':
		kind = tLBracket
	case ']':
		kind = tRBracket
	case ',':
		kind = tComma
	case ';':
		kind = tSemi
	case '.':
		kind = tDot
	case '+':
		kind = tPlus
	case '-':
		kind = tMinus
	case '*':
		kind = tStar
	case '/':
		kind = tSlash
	case '%':
		kind = tPercent
	case '|':
		if l.peekByte(1) == '|' {
			kind, n = tConcat, 2
		}
	case '=':
		switch l.peekByte(1) {
		case '=':
			kind, n = tEq, 2
		case '>':
			kind, n = tArrow, 2
		default:
			kind = tEq
		}
	case '!':
		if l.peekByte(1) == '=' {
			kind, n = tNe, 2
		}
	case '<':
		switch l.peekByte(1) {
		case '=':
			kind, n = tLe, 2
			if l.peekByte(2) == '>' {
				kind, n = tNullSafeEq, 3
			}
		case '>':
			kind, n = tNe, 2
		default:
			kind = tLt
		}
	case '>':
		kind = tGt
		if l.peekByte(1) == '=' {
			kind, n = tGe, 2
		}
	case ':':
		kind = tColon
		if l.peekByte(1) == ':' {
			kind, n = tDoubleColon, 2
		}
	}
	if kind == tEOF {
		r, _ := runeAt(l.src, start)
		return l.errorf(start, "unexpected character %q", r)
	}
	l.off += n
	l.emit(kind, start)
	return nil
}

func (l *lexer) scanIdentPart() {
	for l.off < len(l.src) {
		r, n := runeAt(l.src, l.off)
		if !isIdentPart(r) {
			return
		}
		l.off += n
	}
}

// number lexes digits [. digits] [e [+-] digits], or . digits [exponent].
// A letter, digit or '_' right after a number is an error: 10m is neither
// a number nor an identifier.
func (l *lexer) number() *ParseError {
	start := l.off
	digits := func() {
		for l.off < len(l.src) && isDigit(l.src[l.off]) {
			l.off++
		}
	}
	digits()
	if l.peekByte(0) == '.' && isDigit(l.peekByte(1)) {
		l.off++
		digits()
	}
	if e := l.peekByte(0); e == 'e' || e == 'E' {
		if isDigit(l.peekByte(1)) {
			l.off++
			digits()
		} else if s := l.peekByte(1); (s == '+' || s == '-') && isDigit(l.peekByte(2)) {
			l.off += 2
			digits()
		}
	}
	if l.off < len(l.src) {
		if r, _ := runeAt(l.src, l.off); isIdentPart(r) {
			l.scanIdentPart()
			return l.errorf(start, "invalid number %q", l.src[start:l.off])
		}
	}
	l.emit(tNumber, start)
	return nil
}

// quoted lexes a string or a back-quoted identifier: the quote character q
// is written twice to stand for itself; there are no backslash escapes.
func (l *lexer) quoted(kind tokenKind, q byte) *ParseError {
	start := l.off
	l.off++
	var b strings.Builder // used only when the text has escaped quotes
	from := l.off
	for {
		i := strings.IndexByte(l.src[l.off:], q)
		if i < 0 {
			if kind == tString {
				return l.errorf(start, "unterminated string")
			}
			return l.errorf(start, "unterminated quoted identifier")
		}
		l.off += i + 1
		if l.peekByte(0) != q {
			break
		}
		b.WriteString(l.src[from:l.off]) // up to and including one quote
		l.off++
		from = l.off
	}
	val := l.src[from : l.off-1]
	if b.Len() > 0 {
		b.WriteString(val)
		val = b.String()
	}
	if kind == tQuotedIdent && val == "" {
		return l.errorf(start, "empty quoted identifier")
	}
	l.emit(kind, start)
	l.toks[len(l.toks)-1].val = val
	return nil
}
