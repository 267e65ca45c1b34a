package sql

import (
	"fmt"
	"reflect"
	"strings"
)

// Dump prints the tree rooted at n, one node per line, indented by depth:
// the node's type and position, its scalar fields (true booleans by name,
// enums by their SQL spelling, strings quoted), identifiers and names inline
// (name@line:col), and its child nodes on the lines below, each prefixed
// with the field's name. It is for tests and debugging; the format may
// change.
//
//	Binary @1:1 Op="+"
//	  L: ColumnRef @1:1 Parts=[a]
//	  R: NumberLit @1:5 Raw="1" Kind=INT
func Dump(n Node) string {
	var d dumper
	d.node("", reflect.ValueOf(n), 0)
	return d.b.String()
}

type dumper struct {
	b strings.Builder
}

var (
	posType       = reflect.TypeFor[Pos]()
	identPtrType  = reflect.TypeFor[*Ident]()
	objectPtrType = reflect.TypeFor[*ObjectName]()
	nodeType      = reflect.TypeFor[Node]()
)

func (d *dumper) node(label string, v reflect.Value, depth int) {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	d.b.WriteString(strings.Repeat("  ", depth))
	if label != "" {
		d.b.WriteString(label)
		d.b.WriteString(": ")
	}
	s := v.Elem()
	t := s.Type()
	fmt.Fprintf(&d.b, "%s @%s", t.Name(), s.FieldByName("Start").Interface().(Pos))
	type child struct {
		label string
		v     reflect.Value
	}
	var children []child
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), s.Field(i)
		switch {
		case f.Type == posType:
			// Start is printed above; operator positions are left out
		case f.Type == identPtrType:
			if !fv.IsNil() {
				fmt.Fprintf(&d.b, " %s=%s", f.Name, identText(fv.Interface().(*Ident)))
			}
		case f.Type == objectPtrType:
			if !fv.IsNil() {
				o := fv.Interface().(*ObjectName)
				fmt.Fprintf(&d.b, " %s=%s@%s", f.Name, identsText(o.Parts), o.Start)
			}
		case f.Type == reflect.TypeFor[[]*Ident]():
			if fv.Len() > 0 {
				fmt.Fprintf(&d.b, " %s=[%s]", f.Name, identsText(fv.Interface().([]*Ident)))
			}
		case f.Type.Kind() == reflect.Bool && f.Name == "Value": // BoolLit
			fmt.Fprintf(&d.b, " %s=%t", f.Name, fv.Bool())
		case f.Type.Kind() == reflect.Bool:
			if fv.Bool() {
				fmt.Fprintf(&d.b, " %s", f.Name)
			}
		case f.Type.Kind() == reflect.String:
			fmt.Fprintf(&d.b, " %s=%q", f.Name, fv.String())
		case f.Type.Kind() == reflect.Int:
			fmt.Fprintf(&d.b, " %s=%d", f.Name, fv.Int())
		case f.Type.Kind() == reflect.Uint8: // enums: Kind=STREAMING TABLE, Op="<="
			e := fmt.Sprint(fv.Interface())
			if strings.Trim(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_ ") != "" {
				e = fmt.Sprintf("%q", e)
			}
			fmt.Fprintf(&d.b, " %s=%s", f.Name, e)
		case f.Type.Kind() == reflect.Slice:
			for j := 0; j < fv.Len(); j++ {
				children = append(children, child{fmt.Sprintf("%s[%d]", f.Name, j), fv.Index(j)})
			}
		case f.Type.Implements(nodeType) || f.Type.Kind() == reflect.Interface:
			if !fv.IsNil() {
				children = append(children, child{f.Name, fv})
			}
		default:
			panic(fmt.Sprintf("sql.Dump: field %s.%s of type %s", t.Name(), f.Name, f.Type))
		}
	}
	d.b.WriteByte('\n')
	for _, c := range children {
		d.node(c.label, c.v, depth+1)
	}
}

func identText(id *Ident) string {
	return fmt.Sprintf("%s@%s", identsText([]*Ident{id}), id.Start)
}

func identsText(ids []*Ident) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte('.')
		}
		if plainWord(id.Name) {
			b.WriteString(id.Name)
		} else {
			b.WriteString("`" + strings.ReplaceAll(id.Name, "`", "``") + "`")
		}
	}
	return b.String()
}
