// Package stream defines a stream's declaration: the spec a user writes in
// YAML or JSON (mirroring the seed's create_stream: source, connection,
// schema and ingestion configs), its strict parsing and its validation.
//
// The spec is pure data. Checks that need the outside world (is the broker
// reachable, is the destination free) belong to the code that creates the
// stream; Validate only checks what the document itself says.
package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/ident"
	"gopkg.in/yaml.v3"
)

// Spec is a stream declaration. Field names are the YAML/JSON keys.
type Spec struct {
	Name       string     `yaml:"name" json:"name"`
	Source     Source     `yaml:"source" json:"source"`
	Connection Connection `yaml:"connection" json:"connection"`
	Schema     Schemas    `yaml:"schema,omitempty" json:"schema"`
	Ingestion  Ingestion  `yaml:"ingestion" json:"ingestion"`
}

// Source says where records come from. Exactly one kind (only kafka today).
type Source struct {
	Kafka *KafkaSource `yaml:"kafka" json:"kafka,omitempty"`
}

// KafkaSource selects topics with exactly one of the seed's three
// subscription modes.
type KafkaSource struct {
	// Subscribe is a comma-separated list of topic names.
	Subscribe string `yaml:"subscribe,omitempty" json:"subscribe,omitempty"`
	// SubscribePattern is a regular expression that must match a whole topic
	// name (Java's Pattern.matches semantics, as Kafka's subscribePattern).
	SubscribePattern string `yaml:"subscribe_pattern,omitempty" json:"subscribe_pattern,omitempty"`
	// Assign is JSON mapping topic -> partitions, e.g. {"orders":[0,1]}.
	Assign string `yaml:"assign,omitempty" json:"assign,omitempty"`
}

// Connection says how to reach and authenticate to the brokers.
type Connection struct {
	// BootstrapServers is a comma-separated host:port list, or "embedded"
	// for the broker `sluice up` embeds.
	BootstrapServers string `yaml:"bootstrap_servers" json:"bootstrap_servers"`
	MTLS             *MTLS  `yaml:"mtls,omitempty" json:"mtls,omitempty"`
}

// MTLS is the seed's "Direct mTLS", the Go way: PEM files, with the client
// key's password (if the key is encrypted) read from a secret scope.
type MTLS struct {
	CAFile         string     `yaml:"ca_file" json:"ca_file"`
	CertFile       string     `yaml:"cert_file" json:"cert_file"`
	KeyFile        string     `yaml:"key_file" json:"key_file"`
	KeyPasswordRef *SecretRef `yaml:"key_password_ref,omitempty" json:"key_password_ref,omitempty"`
	// ServerName overrides the name verified in the broker's certificate;
	// default: the host of the bootstrap server.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
}

// SecretRef names a secret stored with `sluice secret put SCOPE KEY`.
type SecretRef struct {
	Scope string `yaml:"scope" json:"scope"`
	Key   string `yaml:"key" json:"key"`
}

// Schemas holds the key and payload (value) schemas; either may be absent,
// in which case that column is a plain string.
type Schemas struct {
	Payload *SchemaConfig `yaml:"payload,omitempty" json:"payload,omitempty"`
	Key     *SchemaConfig `yaml:"key,omitempty" json:"key,omitempty"`
}

// SchemaConfig carries one JSON Schema document.
type SchemaConfig struct {
	// JSONSchema is the document, given in YAML/JSON as an object or as a
	// string holding JSON (as the seed does). Property order is kept: it is
	// the column order of the resulting struct.
	JSONSchema RawJSON `yaml:"json_schema" json:"json_schema"`
}

// Ingestion configures the managed ingestion into the ingestion table.
type Ingestion struct {
	// Destination is the ingestion table's three-part name.
	Destination string `yaml:"destination" json:"destination"`
	// CommitInterval bounds how long records wait before a table commit.
	// Default 5s.
	CommitInterval Duration `yaml:"commit_interval,omitempty" json:"commit_interval,omitempty"`
	// CommitMaxRecords commits as soon as a batch holds this many records.
	// Default 200000.
	CommitMaxRecords int `yaml:"commit_max_records,omitempty" json:"commit_max_records,omitempty"`
	// BackfillSource is where history comes from (a table, or Parquet
	// files); nil means no backfill. See [BackfillSource].
	BackfillSource *BackfillSource `yaml:"backfill_source,omitempty" json:"backfill_source,omitempty"`
	// DeduplicationColumns are the dot paths ("value.transaction_id",
	// "kafka_offset") whose values identify a record when backfill rows are
	// merged; empty means (key, value, stream_record_timestamp).
	DeduplicationColumns []string `yaml:"deduplication_columns,omitempty" json:"deduplication_columns,omitempty"`
	// BackfillOverlap is how far the backfill's latest timestamp must
	// reach past the ingestion table's earliest stream timestamp before
	// the merge runs. Default 1h (with a backfill source).
	BackfillOverlap Duration `yaml:"backfill_overlap,omitempty" json:"backfill_overlap,omitempty"`
	// BackfillDeadline is how long after the stream's creation the merge
	// runs even without that overlap. Default 48h (with a backfill source).
	BackfillDeadline Duration `yaml:"backfill_deadline,omitempty" json:"backfill_deadline,omitempty"`
}

// Defaults for Ingestion.
const (
	DefaultCommitInterval   = 5 * time.Second
	DefaultCommitMaxRecords = 200_000
)

// EnsureDefaults fills in the documented defaults of unset fields.
func (s *Spec) EnsureDefaults() {
	if s.Ingestion.CommitInterval == 0 {
		s.Ingestion.CommitInterval = Duration(DefaultCommitInterval)
	}
	if s.Ingestion.CommitMaxRecords == 0 {
		s.Ingestion.CommitMaxRecords = DefaultCommitMaxRecords
	}
	s.Ingestion.ensureBackfillDefaults()
}

// FieldError is a problem with one field of the spec. Field is the dotted
// path as written in the spec, e.g. "source.kafka.subscribe_pattern".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Parse reads a spec from YAML or JSON (JSON is YAML). Unknown fields are
// errors, so a typo never silently does nothing. Parse applies defaults and
// validates; the error names the offending field.
func Parse(doc []byte) (*Spec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("parsing stream spec: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("parsing stream spec: the document is empty")
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parsing stream spec: %w", err)
	}
	s.EnsureDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the spec on its own terms.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return fieldErr("name", "is required: a three-part name catalog.schema.stream")
	}
	if _, err := ident.Parse(s.Name); err != nil {
		return fieldErr("name", "%v", err)
	}
	if s.Source.Kafka == nil {
		return fieldErr("source.kafka", "is required (kafka is the only source kind)")
	}
	if err := s.Source.Kafka.validate(); err != nil {
		return err
	}
	if strings.TrimSpace(s.Connection.BootstrapServers) == "" {
		return fieldErr("connection.bootstrap_servers", "is required, e.g. 127.0.0.1:9092")
	}
	for _, hp := range s.Connection.Brokers() {
		if hp == EmbeddedBroker && len(s.Connection.Brokers()) == 1 {
			continue
		}
		if !strings.Contains(hp, ":") {
			return fieldErr("connection.bootstrap_servers", "%q has no port; write host:port", hp)
		}
	}
	if m := s.Connection.MTLS; m != nil {
		for field, v := range map[string]string{"ca_file": m.CAFile, "cert_file": m.CertFile, "key_file": m.KeyFile} {
			if v == "" {
				return fieldErr("connection.mtls."+field, "is required for mTLS (a PEM file path)")
			}
		}
		if r := m.KeyPasswordRef; r != nil && (r.Scope == "" || r.Key == "") {
			return fieldErr("connection.mtls.key_password_ref", "needs both scope and key")
		}
	}
	for field, sc := range map[string]*SchemaConfig{"schema.payload": s.Schema.Payload, "schema.key": s.Schema.Key} {
		if sc != nil && len(sc.JSONSchema) == 0 {
			return fieldErr(field+".json_schema", "is required when %s is given", field)
		}
	}
	if s.Ingestion.Destination == "" {
		return fieldErr("ingestion.destination", "is required: the ingestion table's three-part name")
	}
	dest, err := ident.Parse(s.Ingestion.Destination)
	if err != nil {
		return fieldErr("ingestion.destination", "%v", err)
	}
	if strings.HasSuffix(dest.Object, QuarantineSuffix) {
		return fieldErr("ingestion.destination", "must not end in %q (reserved for quarantine tables)", QuarantineSuffix)
	}
	if s.Ingestion.CommitInterval < 0 || time.Duration(s.Ingestion.CommitInterval) > time.Hour {
		return fieldErr("ingestion.commit_interval", "must be between 0 and 1h, got %s", s.Ingestion.CommitInterval)
	}
	if s.Ingestion.CommitMaxRecords < 0 || s.Ingestion.CommitMaxRecords > 10_000_000 {
		return fieldErr("ingestion.commit_max_records", "must be between 1 and 10000000, got %d", s.Ingestion.CommitMaxRecords)
	}
	return s.Ingestion.validateBackfill()
}

// EmbeddedBroker, as connection.bootstrap_servers, names the broker that
// `sluice up` embeds, wherever it listens now: a stream on it keeps working
// when sluice restarts with another --broker-addr.
const EmbeddedBroker = "embedded"

// QuarantineSuffix is appended to the destination's name to name the table
// that receives records that do not decode or violate the schema.
const QuarantineSuffix = "_quarantine"

// StreamName returns the parsed stream name; valid after Validate.
func (s *Spec) StreamName() ident.Name { n, _ := ident.Parse(s.Name); return n }

// DestinationName returns the parsed ingestion table name; valid after Validate.
func (s *Spec) DestinationName() ident.Name {
	n, _ := ident.Parse(s.Ingestion.Destination)
	return n
}

// QuarantineName returns the quarantine table's name.
func (s *Spec) QuarantineName() ident.Name {
	d := s.DestinationName()
	return d.WithObject(d.Object + QuarantineSuffix)
}

// Brokers splits BootstrapServers.
func (c Connection) Brokers() []string { return splitList(c.BootstrapServers) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Mode names the subscription mode in use.
func (k *KafkaSource) Mode() string {
	switch {
	case k.Subscribe != "":
		return "subscribe"
	case k.SubscribePattern != "":
		return "subscribe_pattern"
	default:
		return "assign"
	}
}

// Topics returns the topics of subscribe mode.
func (k *KafkaSource) Topics() []string { return splitList(k.Subscribe) }

// Pattern compiles subscribe_pattern anchored at both ends, so that it must
// match the whole topic name as Java's Pattern.matches does.
func (k *KafkaSource) Pattern() (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + k.SubscribePattern + `)$`)
}

// Assignment parses assign: topic -> partitions.
func (k *KafkaSource) Assignment() (map[string][]int32, error) {
	var m map[string][]int32
	dec := json.NewDecoder(strings.NewReader(k.Assign))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func (k *KafkaSource) validate() error {
	n := 0
	for _, v := range []string{k.Subscribe, k.SubscribePattern, k.Assign} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return fieldErr("source.kafka", "give exactly one of subscribe, subscribe_pattern or assign (got %d)", n)
	}
	switch k.Mode() {
	case "subscribe":
		if len(k.Topics()) == 0 {
			return fieldErr("source.kafka.subscribe", "lists no topic")
		}
		for _, t := range k.Topics() {
			if err := checkTopic(t); err != nil {
				return fieldErr("source.kafka.subscribe", "%v", err)
			}
		}
	case "subscribe_pattern":
		if _, err := k.Pattern(); err != nil {
			return fieldErr("source.kafka.subscribe_pattern", "is not a regular expression sluice supports (RE2 syntax: no lookarounds or backreferences): %v", err)
		}
	case "assign":
		m, err := k.Assignment()
		if err != nil {
			return fieldErr("source.kafka.assign", `must be JSON mapping topic to partitions, e.g. {"orders":[0,1]}: %v`, err)
		}
		if len(m) == 0 {
			return fieldErr("source.kafka.assign", "assigns no topic")
		}
		for t, ps := range m {
			if err := checkTopic(t); err != nil {
				return fieldErr("source.kafka.assign", "%v", err)
			}
			if len(ps) == 0 {
				return fieldErr("source.kafka.assign", "topic %q lists no partition", t)
			}
			for _, p := range ps {
				if p < 0 {
					return fieldErr("source.kafka.assign", "topic %q: partition %d is negative", t, p)
				}
			}
		}
	}
	return nil
}

func checkTopic(t string) error {
	if len(t) > 249 {
		return fmt.Errorf("topic %q is longer than 249 characters", t)
	}
	for _, r := range t {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("topic %q has character %q; Kafka allows letters, digits, '.', '_' and '-'", t, r)
		}
	}
	return nil
}
