package sql

import (
	"fmt"
	"strconv"
)

// Pos is a position in the source text.
type Pos struct {
	Offset int // byte offset, from 0
	Line   int // line, from 1
	Col    int // column in characters (runes, not bytes), from 1
}

// String returns "line:col".
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// IsValid reports whether p is a position in some source (the zero Pos is not).
func (p Pos) IsValid() bool { return p.Line > 0 }

type tokenKind uint8

const (
	tEOF         tokenKind = iota
	tIdent                 // a word: identifier or keyword
	tQuotedIdent           // `back quoted`
	tNumber                // 12, 1.5, .5, 1e-3
	tString                // 'single' or "double" quoted
	tLParen                // (
	tRParen                // )
	tLBracket              // [
	tRBracket              // ]
	tComma                 // ,
	tSemi                  // ;
	tDot                   // .
	tPlus                  // +
	tMinus                 // -
	tStar                  // *
	tSlash                 // /
	tPercent               // %
	tConcat                // ||
	tEq                    // = or ==
	tNe                    // != or <>
	tLt                    // <
	tLe                    // <=
	tGt                    // >
	tGe                    // >=
	tNullSafeEq            // <=>
	tDoubleColon           // ::
	tColon                 // :
	tArrow                 // =>
)

// tokenText is how the parser names a token kind in "expected ..." messages.
var tokenText = [...]string{
	tEOF: "end of input", tIdent: "an identifier", tQuotedIdent: "an identifier",
	tNumber: "a number", tString: "a string",
	tLParen: `"("`, tRParen: `")"`, tLBracket: `"["`, tRBracket: `"]"`, tComma: `","`,
	tSemi: `";"`, tDot: `"."`, tPlus: `"+"`, tMinus: `"-"`, tStar: `"*"`, tSlash: `"/"`,
	tPercent: `"%"`, tConcat: `"||"`, tEq: `"="`, tNe: `"!="`, tLt: `"<"`, tLe: `"<="`,
	tGt: `">"`, tGe: `">="`, tNullSafeEq: `"<=>"`, tDoubleColon: `"::"`, tColon: `":"`,
	tArrow: `"=>"`,
}

type token struct {
	kind tokenKind
	kw   keyword // the keyword an unquoted word spells, or kwNone
	pos  Pos
	text string // the source text
	val  string // tString, tQuotedIdent: unescaped contents; otherwise text
}

// describe names the token in an error message: `"FROM"` or "end of input".
func (t *token) describe() string {
	if t.kind == tEOF {
		return "end of input"
	}
	s := t.text
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return strconv.Quote(s)
}

// keyword is a word with a meaning to the parser. Only the reserved ones
// (see reserved) cannot be used as bare identifiers.
type keyword uint8

const (
	kwNone keyword = iota
	kwAll
	kwAnd
	kwAnti
	kwAs
	kwAsc
	kwBetween
	kwBy
	kwCase
	kwCast
	kwComment
	kwConstraint
	kwCreate
	kwCross
	kwDate
	kwDelay
	kwDesc
	kwDistinct
	kwDrop
	kwElse
	kwEnd
	kwExcept
	kwExists
	kwExpect
	kwFail
	kwFalse
	kwFilter
	kwFirst
	kwFrom
	kwFull
	kwGroup
	kwHaving
	kwILike
	kwIn
	kwInner
	kwIntersect
	kwInterval
	kwIs
	kwJoin
	kwKey
	kwLast
	kwLateral
	kwLeft
	kwLike
	kwLimit
	kwLive
	kwMaterialized
	kwNatural
	kwNot
	kwNull
	kwNulls
	kwOf
	kwOffset
	kwOn
	kwOr
	kwOrder
	kwOuter
	kwPrimary
	kwRefresh
	kwRegexp
	kwRight
	kwRLike
	kwRow
	kwSelect
	kwSemi
	kwStream
	kwStreaming
	kwTable
	kwTblProperties
	kwTemporary
	kwThen
	kwTimeseries
	kwTimestamp
	kwTrue
	kwTryCast
	kwUnion
	kwUpdate
	kwUsing
	kwView
	kwViolation
	kwWatermark
	kwWhen
	kwWhere
	numKeywords
)

var keywordNames = [numKeywords]string{
	kwAll: "ALL", kwAnd: "AND", kwAnti: "ANTI", kwAs: "AS", kwAsc: "ASC", kwBetween: "BETWEEN",
	kwBy: "BY", kwCase: "CASE", kwCast: "CAST", kwComment: "COMMENT", kwConstraint: "CONSTRAINT",
	kwCreate: "CREATE", kwCross: "CROSS", kwDate: "DATE", kwDelay: "DELAY", kwDesc: "DESC",
	kwDistinct: "DISTINCT", kwDrop: "DROP", kwElse: "ELSE", kwEnd: "END", kwExcept: "EXCEPT",
	kwExists: "EXISTS", kwExpect: "EXPECT", kwFail: "FAIL", kwFalse: "FALSE", kwFilter: "FILTER",
	kwFirst: "FIRST", kwFrom: "FROM", kwFull: "FULL", kwGroup: "GROUP", kwHaving: "HAVING",
	kwILike: "ILIKE", kwIn: "IN", kwInner: "INNER", kwIntersect: "INTERSECT",
	kwInterval: "INTERVAL", kwIs: "IS", kwJoin: "JOIN", kwKey: "KEY", kwLast: "LAST",
	kwLateral: "LATERAL", kwLeft: "LEFT", kwLike: "LIKE", kwLimit: "LIMIT", kwLive: "LIVE",
	kwMaterialized: "MATERIALIZED", kwNatural: "NATURAL", kwNot: "NOT", kwNull: "NULL",
	kwNulls: "NULLS", kwOf: "OF", kwOffset: "OFFSET", kwOn: "ON", kwOr: "OR", kwOrder: "ORDER",
	kwOuter: "OUTER", kwPrimary: "PRIMARY", kwRefresh: "REFRESH", kwRegexp: "REGEXP",
	kwRight: "RIGHT", kwRLike: "RLIKE", kwRow: "ROW", kwSelect: "SELECT", kwSemi: "SEMI",
	kwStream: "STREAM", kwStreaming: "STREAMING", kwTable: "TABLE",
	kwTblProperties: "TBLPROPERTIES", kwTemporary: "TEMPORARY", kwThen: "THEN",
	kwTimeseries: "TIMESERIES", kwTimestamp: "TIMESTAMP", kwTrue: "TRUE", kwTryCast: "TRY_CAST",
	kwUnion: "UNION", kwUpdate: "UPDATE", kwUsing: "USING", kwView: "VIEW",
	kwViolation: "VIOLATION", kwWatermark: "WATERMARK", kwWhen: "WHEN", kwWhere: "WHERE",
}

func (k keyword) String() string { return keywordNames[k] }

// keywords maps a lower-case word to its keyword.
var keywords = func() map[string]keyword {
	m := make(map[string]keyword, numKeywords)
	for k := kwNone + 1; k < numKeywords; k++ {
		b := []byte(keywordNames[k])
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		m[string(b)] = k
	}
	return m
}()

// reserved keywords cannot be column, table or function names unless
// back quoted (LEFT and RIGHT may name functions: left(s, 3)). They are
// the words that start or continue a clause or an expression.
var reserved = func() (r [numKeywords]bool) {
	for _, k := range []keyword{
		kwAll, kwAnd, kwAs, kwBetween, kwCase, kwCast, kwCreate, kwCross, kwDistinct, kwElse,
		kwEnd, kwExcept, kwFalse, kwFrom, kwFull, kwGroup, kwHaving, kwILike, kwIn, kwInner,
		kwIntersect, kwIs, kwJoin, kwLateral, kwLeft, kwLike, kwLimit, kwNatural, kwNot, kwNull,
		kwOn, kwOr, kwOrder, kwOuter, kwRegexp, kwRight, kwRLike, kwSelect, kwThen, kwTrue,
		kwUnion, kwUsing, kwWatermark, kwWhen, kwWhere,
	} {
		r[k] = true
	}
	return r
}()

// lookupKeyword returns the keyword that word spells, case-insensitively.
func lookupKeyword(word string) keyword {
	if len(word) < 2 || len(word) > 16 {
		return kwNone
	}
	var buf [16]byte
	for i := 0; i < len(word); i++ {
		c := word[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z', c == '_':
		default:
			return kwNone // keywords are letters and '_' only
		}
		buf[i] = c
	}
	return keywords[string(buf[:len(word)])]
}
