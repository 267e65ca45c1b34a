package stream

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `
name: main.demo.orders
source:
  kafka:
    subscribe: orders
connection:
  bootstrap_servers: 127.0.0.1:9092
schema:
  key: {json_schema: {"type": "string"}}
  payload:
    json_schema:
      type: object
      properties:
        order_id: {type: string}
        amount: {type: number}
ingestion:
  destination: main.demo.orders_ingestion
`

func TestParseGood(t *testing.T) {
	s, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(s.Schema.Payload.JSONSchema); got != `{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"number"}}}` {
		t.Fatalf("payload schema = %s (key order must be kept)", got)
	}
	if s.Ingestion.CommitInterval.D() != DefaultCommitInterval || s.Ingestion.CommitMaxRecords != DefaultCommitMaxRecords {
		t.Fatalf("defaults not applied: %+v", s.Ingestion)
	}
	if s.QuarantineName().String() != "main.demo.orders_ingestion_quarantine" {
		t.Fatal(s.QuarantineName())
	}
	// The JSON form parses back to the same spec (the API's round trip).
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(b)
	if err != nil {
		t.Fatalf("parsing own JSON %s: %v", b, err)
	}
	b2, _ := json.Marshal(s2)
	if string(b) != string(b2) {
		t.Fatalf("round trip differs:\n%s\n%s", b, b2)
	}
	// The seed's form: the schema as a string holding JSON.
	s3, err := Parse([]byte(strings.Replace(good, `{json_schema: {"type": "string"}}`, `{json_schema: '{"type": "string"}'}`, 1)))
	if err != nil || string(s3.Schema.Key.JSONSchema) != `{"type":"string"}` {
		t.Fatalf("string schema: %v, %s", err, s3.Schema.Key.JSONSchema)
	}
}

func TestParseDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"250ms": 250 * time.Millisecond, "2": 2 * time.Second, "1m": time.Minute} {
		s, err := Parse([]byte(good + "  commit_interval: " + in + "\n"))
		if err != nil || s.Ingestion.CommitInterval.D() != want {
			t.Fatalf("%s: %v, %v", in, s.Ingestion.CommitInterval, err)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	cases := map[string]struct {
		from, to string
		field    string // FieldError.Field; "" means a parse error mentioning want
		want     string
	}{
		"two modes":        {"subscribe: orders", "{subscribe: orders, subscribe_pattern: 'o.*'}", "source.kafka", "exactly one"},
		"no mode":          {"subscribe: orders", "{}", "source.kafka", "exactly one"},
		"bad regex":        {"subscribe: orders", "subscribe_pattern: '(?=x)'", "source.kafka.subscribe_pattern", "RE2"},
		"bad assign json":  {"subscribe: orders", `assign: '{"orders":'`, "source.kafka.assign", "JSON"},
		"negative part":    {"subscribe: orders", `assign: '{"orders":[-1]}'`, "source.kafka.assign", "negative"},
		"bad topic":        {"subscribe: orders", "subscribe: 'or ders'", "source.kafka.subscribe", "character"},
		"two-part name":    {"name: main.demo.orders", "name: demo.orders", "name", "three parts"},
		"bad destination":  {"destination: main.demo.orders_ingestion", "destination: orders", "ingestion.destination", "three parts"},
		"quarantine dest":  {"destination: main.demo.orders_ingestion", "destination: main.demo.x_quarantine", "ingestion.destination", "reserved"},
		"no bootstrap":     {"bootstrap_servers: 127.0.0.1:9092", "bootstrap_servers: ''", "connection.bootstrap_servers", "required"},
		"no port":          {"bootstrap_servers: 127.0.0.1:9092", "bootstrap_servers: localhost", "connection.bootstrap_servers", "no port"},
		"unknown field":    {"ingestion:", "ingestoin:", "", "field ingestoin not found"},
		"bad duration":     {"destination: main.demo.orders_ingestion", "destination: main.demo.orders_ingestion\n  commit_interval: soon", "", "invalid duration"},
		"schema not json":  {`{json_schema: {"type": "string"}}`, `{json_schema: '{"type":'}`, "", "not valid JSON"},
		"mtls missing key": {"bootstrap_servers: 127.0.0.1:9092", "bootstrap_servers: 127.0.0.1:9092\n  mtls: {ca_file: a, cert_file: b}", "connection.mtls.key_file", "required"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(good, c.from, c.to, 1)
			if doc == good {
				t.Fatalf("replacement %q not found", c.from)
			}
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatal("parsed")
			}
			var fe *FieldError
			if c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
				t.Fatalf("err = %v; want a FieldError on %s", err, c.field)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to mention %q", err, c.want)
			}
		})
	}
}

// FuzzParse: Parse never panics, and a spec it accepts survives the JSON
// round trip the API makes (marshal, parse again, same JSON).
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"name":"a.b.c","source":{"kafka":{"assign":"{\"t\":[0]}"}},"connection":{"bootstrap_servers":"h:1"},"ingestion":{"destination":"a.b.d"}}`))
	f.Add([]byte("name: [\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := Parse(doc)
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		s2, err := Parse(b)
		if err != nil {
			t.Fatalf("accepted spec does not re-parse: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(s2)
		if string(b) != string(b2) {
			t.Fatalf("round trip differs:\n%s\n%s", b, b2)
		}
	})
}
