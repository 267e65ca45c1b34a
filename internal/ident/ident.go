// Package ident parses and prints sluice's three-part names
// (catalog.schema.object), the names of streams, tables and pipelines.
package ident

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid name")

// Name is a three-part name catalog.schema.object. The zero Name is invalid.
type Name struct {
	Catalog string
	Schema  string
	Object  string
}

// Parse parses s as catalog.schema.object. Each part must be non-empty and
// made of letters, digits and underscores (it becomes a directory and a
// table identifier). Names are case-sensitive.
func Parse(s string) (Name, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Name{}, fmt.Errorf("%w %q: want three parts catalog.schema.name, got %d", ErrInvalid, s, len(parts))
	}
	for i, p := range parts {
		if err := checkPart(p); err != nil {
			return Name{}, fmt.Errorf("%w %q: %s part %w", ErrInvalid, s, [3]string{"catalog", "schema", "name"}[i], err)
		}
	}
	return Name{Catalog: parts[0], Schema: parts[1], Object: parts[2]}, nil
}

// ParseNamespace parses s as catalog.schema, the prefix that lists objects.
func ParseNamespace(s string) (catalog, schema string, err error) {
	parts := strings.Split(s, ".")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("%w %q: want catalog.schema", ErrInvalid, s)
	}
	for _, p := range parts {
		if err := checkPart(p); err != nil {
			return "", "", fmt.Errorf("%w %q: %w", ErrInvalid, s, err)
		}
	}
	return parts[0], parts[1], nil
}

func checkPart(p string) error {
	if p == "" {
		return errors.New("is empty")
	}
	if len(p) > 128 {
		return errors.New("is longer than 128 characters")
	}
	for _, r := range p {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%q has character %q; use letters, digits and _", p, r)
		}
	}
	return nil
}

// String returns catalog.schema.object.
func (n Name) String() string { return n.Catalog + "." + n.Schema + "." + n.Object }

// Namespace returns catalog.schema.
func (n Name) Namespace() string { return n.Catalog + "." + n.Schema }

// IsZero reports whether n is the zero Name.
func (n Name) IsZero() bool { return n == Name{} }

// WithObject returns n with its last part replaced.
func (n Name) WithObject(obj string) Name { n.Object = obj; return n }
