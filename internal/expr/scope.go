package expr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sluice-dev/sluice/internal/sql"
)

// NewScope returns the columns of sc, each qualified by qualifier ("" for
// none), with Index its position in sc.
func NewScope(sc *arrow.Schema, qualifier string) *Scope {
	s := &Scope{}
	if sc == nil {
		return s
	}
	for i, f := range sc.Fields() {
		s.Columns = append(s.Columns, Column{Qualifier: qualifier, Name: f.Name, Type: f.Type, Index: i})
	}
	return s
}

// Concat returns the scope of a join of s (left) and o (right): the
// columns of both, with o's Index values shifted by len(s.Columns), as in
// a batch of s's columns followed by o's. Neither input is modified.
func (s *Scope) Concat(o *Scope) *Scope {
	out := &Scope{}
	if s != nil {
		out.Columns = append(out.Columns, s.Columns...)
	}
	if o != nil {
		shift := 0
		if s != nil {
			shift = len(s.Columns)
		}
		for _, c := range o.Columns {
			c.Index += shift
			out.Columns = append(out.Columns, c)
		}
	}
	return out
}

func (s *Scope) columns() []Column {
	if s == nil {
		return nil
	}
	return s.Columns
}

// resolve binds a dotted name: [qualifier.]column[.field...]. A qualifier
// match is preferred, as Spark does: o.amount is column amount of o before
// it is field amount of a column o.
func (b *binder) resolve(ref *sql.ColumnRef) (Expr, error) {
	parts := ref.Parts
	cols := b.scope.columns()
	if len(parts) >= 2 {
		var found []int
		for i, c := range cols {
			if c.Qualifier != "" && strings.EqualFold(c.Qualifier, parts[0].Name) && strings.EqualFold(c.Name, parts[1].Name) {
				found = append(found, i)
			}
		}
		if len(found) > 1 {
			return nil, &Error{Pos: ref.Start, Msg: fmt.Sprintf("column %q is ambiguous: %s has %d columns of that name; rename them", parts[0].Name+"."+parts[1].Name, parts[0].Name, len(found))}
		}
		if len(found) == 1 {
			c := cols[found[0]]
			return b.fields(b.column(c, true), parts[2:])
		}
	}
	var found []int
	for i, c := range cols {
		if strings.EqualFold(c.Name, parts[0].Name) {
			found = append(found, i)
		}
	}
	if len(found) > 1 {
		var quals []string
		for _, i := range found {
			q := cols[i].Qualifier
			if q == "" {
				q = "(unqualified)"
			}
			quals = append(quals, q)
		}
		hint := ""
		if q := cols[found[0]].Qualifier; q != "" {
			hint = fmt.Sprintf("; qualify it, e.g. %s.%s", quoteIdent(q), quoteIdent(cols[found[0]].Name))
		}
		return nil, &Error{Pos: ref.Start, Msg: fmt.Sprintf("column %q is ambiguous: it is in %s%s", parts[0].Name, strings.Join(quals, " and "), hint)}
	}
	if len(found) == 1 {
		return b.fields(b.column(cols[found[0]], false), parts[1:])
	}
	// Unknown: say which part is wrong.
	if len(parts) >= 2 {
		var inQual []string
		isQual := false
		for _, c := range cols {
			if strings.EqualFold(c.Qualifier, parts[0].Name) {
				isQual = true
				inQual = append(inQual, c.Name)
			}
		}
		if isQual {
			return nil, &Error{Pos: parts[1].Start, Msg: fmt.Sprintf("%s has no column %q%s", parts[0].Name, parts[1].Name, didYouMean(parts[1].Name, inQual, parts[0].Name+".", "columns"))}
		}
	}
	var names []string
	for _, c := range cols {
		names = append(names, c.Name)
	}
	msg := fmt.Sprintf("unknown column %q%s", parts[0].Name, didYouMean(parts[0].Name, names, "", "columns"))
	if len(cols) == 0 {
		msg = fmt.Sprintf("unknown column %q: no columns are in scope here", parts[0].Name)
	}
	return nil, &Error{Pos: ref.Start, Msg: msg}
}

func (b *binder) column(c Column, qualified bool) Expr {
	name := quoteIdent(c.Name)
	if qualified && c.Qualifier != "" {
		name = quoteIdent(c.Qualifier) + "." + name
	}
	return &colExpr{idx: c.Index, name: name, src: c.Type, typ: widenType(c.Type)}
}

// fields applies struct field accesses.
func (b *binder) fields(x Expr, parts []*sql.Ident) (Expr, error) {
	for _, p := range parts {
		var err error
		if x, err = b.field(x, p); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (b *binder) field(x Expr, f *sql.Ident) (Expr, error) {
	st, ok := x.Type().(*arrow.StructType)
	if !ok {
		return nil, &Error{Pos: f.Start, Msg: fmt.Sprintf("%s is %s, not a struct: it has no field %q", x.String(), typeName(x.Type()), f.Name)}
	}
	idx := -1
	for i, fl := range st.Fields() {
		if fl.Name == f.Name {
			idx = i
			break
		}
		if idx < 0 && strings.EqualFold(fl.Name, f.Name) {
			idx = i
		}
	}
	if idx < 0 {
		var names []string
		for _, fl := range st.Fields() {
			names = append(names, fl.Name)
		}
		return nil, &Error{Pos: f.Start, Msg: fmt.Sprintf("%s has no field %q%s", x.String(), f.Name, didYouMean(f.Name, names, "", "fields"))}
	}
	fl := st.Field(idx)
	return &fieldExpr{x: x, i: idx, name: fl.Name, typ: widenType(fl.Type)}, nil
}

// didYouMean suggests the closest of names by edit distance, or "".
func didYouMean(name string, names []string, prefix, what string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(n))
		if d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) {
		if len(names) > 0 && len(names) <= 8 {
			s := append([]string(nil), names...)
			sort.Strings(s)
			for i := range s {
				s[i] = prefix + s[i]
			}
			return " (" + what + ": " + strings.Join(s, ", ") + ")"
		}
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", prefix+best)
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
