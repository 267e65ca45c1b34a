package stream_test

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluice-dev/sluice/internal/stream"
)

// These tests keep the documented specs from rotting: every YAML example
// in docs/streams.md and the README's walk-through spec must parse, and
// every field the docs' field table names must exist.

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// overlay returns base with the top-level keys of frag replaced by (or
// added from) frag's, so that a fragment such as the mTLS example is
// checked inside a complete spec.
func overlay(t *testing.T, base, frag string) string {
	t.Helper()
	var b, f yaml.Node
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(frag), &f); err != nil {
		t.Fatalf("fragment is not YAML: %v\n%s", err, frag)
	}
	bm, fm := b.Content[0], f.Content[0]
	if fm.Kind != yaml.MappingNode {
		t.Fatalf("fragment is not a mapping:\n%s", frag)
	}
	for i := 0; i < len(fm.Content); i += 2 {
		k, v := fm.Content[i], fm.Content[i+1]
		replaced := false
		for j := 0; j < len(bm.Content); j += 2 {
			if bm.Content[j].Value == k.Value {
				bm.Content[j+1], replaced = v, true
			}
		}
		if !replaced {
			bm.Content = append(bm.Content, k, v)
		}
	}
	out, err := yaml.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestDocsStreamsYAMLExamplesParse(t *testing.T) {
	doc := readDoc(t, "../../docs/streams.md")
	blocks := yamlBlock.FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("docs/streams.md has %d yaml blocks; expected the spec and the mTLS example", len(blocks))
	}
	var full string // the first complete spec, the base of fragments
	for i, m := range blocks {
		block := m[1]
		if strings.HasPrefix(block, "name:") {
			s, err := stream.Parse([]byte(block))
			if err != nil {
				t.Errorf("yaml block %d of docs/streams.md does not parse: %v\n%s", i+1, err, block)
				continue
			}
			if full == "" {
				full = block
				if s.Name != "main.demo.orders" || s.Ingestion.Destination != "main.demo.orders_ingestion" ||
					s.Schema.Payload == nil || s.Schema.Key == nil {
					t.Errorf("the documented spec parsed as %+v", s)
				}
			}
			continue
		}
		if full == "" {
			t.Fatalf("yaml block %d of docs/streams.md is a fragment before any complete spec:\n%s", i+1, block)
		}
		spec := overlay(t, full, block)
		s, err := stream.Parse([]byte(spec))
		if err != nil {
			t.Errorf("yaml block %d of docs/streams.md (a fragment, checked inside the full spec) does not parse: %v\n%s", i+1, err, block)
			continue
		}
		if strings.Contains(block, "mtls:") && (s.Connection.MTLS == nil || s.Connection.MTLS.KeyPasswordRef == nil) {
			t.Errorf("the mTLS example parsed without mtls or key_password_ref: %+v", s.Connection)
		}
	}
}

func TestDocsREADMEWalkthroughSpecParses(t *testing.T) {
	doc := readDoc(t, "../../README.md")
	m := regexp.MustCompile(`(?s)cat > clicks\.yaml <<'YAML'\n(.*?)\nYAML\n`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("README.md has no `cat > clicks.yaml <<'YAML' ... YAML` heredoc")
	}
	s, err := stream.Parse([]byte(m[1]))
	if err != nil {
		t.Fatalf("the README's clicks.yaml does not parse: %v\n%s", err, m[1])
	}
	if s.Name != "main.web.clicks" || s.Source.Kafka.Subscribe != "clicks" || s.Ingestion.Destination != "main.web.clicks_ingestion" {
		t.Errorf("the README's clicks.yaml parsed as %+v", s)
	}
	// The walk-through's later commands refer to these names.
	for _, want := range []string{"sluice topic create clicks", "stream get main.web.clicks", "table show main.web.clicks_ingestion"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README.md no longer says %q", want)
		}
	}
}

// specFields returns the dotted YAML paths of every field of t.
func specFields(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := prefix + name
		out[p] = true
		if f.Type.Kind() == reflect.Slice { // RawJSON
			continue
		}
		specFields(f.Type, p+".", out)
	}
}

func TestDocsStreamsFieldTableNamesRealFields(t *testing.T) {
	doc := readDoc(t, "../../docs/streams.md")
	fields := map[string]bool{}
	specFields(reflect.TypeFor[stream.Spec](), "", fields)
	rows := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(doc, -1)
	var documented []string
	for _, r := range rows {
		documented = append(documented, r[1])
	}
	// The first table of the spec section lists spec fields; the others
	// (types, columns) list no dotted names that collide with these.
	for _, f := range documented {
		if strings.Contains(f, ".") || f == "name" {
			if !fields[f] {
				t.Errorf("docs/streams.md documents field %s, which the spec does not have (fields: %v)", f, slices.Sorted(maps.Keys(fields)))
			}
		}
	}
	for _, must := range []string{"name", "source.kafka.subscribe", "connection.bootstrap_servers", "ingestion.destination"} {
		if !slices.Contains(documented, must) {
			t.Errorf("docs/streams.md's field table lacks %s", must)
		}
	}
}
