// Package kafka connects sluice to Kafka (or any broker speaking its
// protocol) with franz-go: client options from a stream's connection config
// (bootstrap servers, mTLS with the key password from a secret scope),
// resolution of the three subscription modes to partitions, and offset maps.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/youmark/pkcs8"

	"github.com/sluice-dev/sluice/internal/stream"
)

// SecretFunc returns the value of a stored secret.
type SecretFunc func(ctx context.Context, scope, key string) ([]byte, error)

// ClientOpts returns the kgo options that reach the brokers of conn. Secrets
// referenced by conn are read with secret. The options contain no consumer
// configuration.
func ClientOpts(ctx context.Context, conn stream.Connection, secret SecretFunc) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(conn.Brokers()...),
		kgo.ClientID("sluice"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(30 * time.Second),
	}
	if conn.MTLS != nil {
		cfg, err := TLSConfig(ctx, conn, secret)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts, nil
}

// TLSConfig builds the client TLS configuration of conn.MTLS: the CA that
// verifies the brokers, and the client certificate and key (a key encrypted
// with a password is decrypted with the password in key_password_ref).
func TLSConfig(ctx context.Context, conn stream.Connection, secret SecretFunc) (*tls.Config, error) {
	m := conn.MTLS
	caPEM, err := os.ReadFile(m.CAFile)
	if err != nil {
		return nil, fmt.Errorf("connection.mtls.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("connection.mtls.ca_file %s: no PEM certificate in it", m.CAFile)
	}
	certPEM, err := os.ReadFile(m.CertFile)
	if err != nil {
		return nil, fmt.Errorf("connection.mtls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(m.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("connection.mtls.key_file: %w", err)
	}
	var password []byte
	if r := m.KeyPasswordRef; r != nil {
		if secret == nil {
			return nil, errors.New("connection.mtls.key_password_ref: no secret store available")
		}
		if password, err = secret(ctx, r.Scope, r.Key); err != nil {
			return nil, fmt.Errorf("connection.mtls.key_password_ref: %w", err)
		}
	}
	keyPEM, err = decryptKey(keyPEM, password)
	if err != nil {
		return nil, fmt.Errorf("connection.mtls.key_file %s: %w", m.KeyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("connection.mtls: loading the client certificate and key: %w", err)
	}
	serverName := m.ServerName
	if serverName == "" {
		if brokers := conn.Brokers(); len(brokers) > 0 {
			serverName, _, _ = net.SplitHostPort(brokers[0])
		}
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
	}, nil
}

// decryptKey returns keyPEM with its private key decrypted when it is
// encrypted, either as PKCS#8 ("ENCRYPTED PRIVATE KEY", OpenSSL 3's
// default) or with legacy PEM encryption (openssl's -traditional output).
func decryptKey(keyPEM, password []byte) ([]byte, error) {
	var out []byte
	rest := keyPEM
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch {
		case blk.Type == "ENCRYPTED PRIVATE KEY": // PKCS#8, OpenSSL 3's default
			if len(password) == 0 {
				return nil, errors.New("the key is encrypted: set connection.mtls.key_password_ref to the secret holding its password")
			}
			key, _, err := pkcs8.ParsePrivateKey(blk.Bytes, password)
			if err != nil {
				return nil, fmt.Errorf("decrypting the PKCS#8 key with the password from key_password_ref: %w", err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return nil, err
			}
			blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		//nolint:staticcheck // legacy PEM encryption is what keystore exports use; Go reads no other encrypted form.
		case x509.IsEncryptedPEMBlock(blk):
			if len(password) == 0 {
				return nil, errors.New("the key is encrypted: set connection.mtls.key_password_ref to the secret holding its password")
			}
			//nolint:staticcheck // see above
			der, err := x509.DecryptPEMBlock(blk, password)
			if err != nil {
				return nil, fmt.Errorf("decrypting the key with the password from key_password_ref: %w", err)
			}
			blk = &pem.Block{Type: blk.Type, Bytes: der}
		}
		out = append(out, pem.EncodeToMemory(blk)...)
	}
	if out == nil {
		return nil, errors.New("no PEM block in the key file")
	}
	return out, nil
}

// Offsets maps topic -> partition -> the next offset to read. Its JSON form
// is what sluice records in table snapshots.
type Offsets map[string]map[int32]int64

// Clone returns a deep copy.
func (o Offsets) Clone() Offsets {
	c := make(Offsets, len(o))
	for t, ps := range o {
		c[t] = maps.Clone(ps)
	}
	return c
}

// Equal reports whether o and p hold the same offsets.
func (o Offsets) Equal(p Offsets) bool {
	if len(o) != len(p) {
		return false
	}
	for t, ps := range o {
		if !maps.Equal(ps, p[t]) {
			return false
		}
	}
	return true
}

// Set records next as the next offset of topic/partition.
func (o Offsets) Set(topic string, partition int32, next int64) {
	ps := o[topic]
	if ps == nil {
		ps = map[int32]int64{}
		o[topic] = ps
	}
	ps[partition] = next
}

// Get returns the next offset of topic/partition and whether it is known.
func (o Offsets) Get(topic string, partition int32) (int64, bool) {
	v, ok := o[topic][partition]
	return v, ok
}

// Encode returns the JSON form (deterministic: encoding/json sorts keys).
func (o Offsets) Encode() string {
	if o == nil {
		return "{}"
	}
	b, _ := json.Marshal(o)
	return string(b)
}

// DecodeOffsets parses the JSON form; "" yields nil, nil.
func DecodeOffsets(s string) (Offsets, error) {
	if s == "" {
		return nil, nil
	}
	var o Offsets
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return nil, fmt.Errorf("decoding offsets %q: %w", s, err)
	}
	if o == nil {
		o = Offsets{}
	}
	return o, nil
}

// String lists topic/partition=offset pairs in order, for logs and errors.
func (o Offsets) String() string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(o)) {
		for _, p := range slices.Sorted(maps.Keys(o[t])) {
			parts = append(parts, fmt.Sprintf("%s/%d=%d", t, p, o[t][p]))
		}
	}
	return strings.Join(parts, " ")
}

// Resolve returns the partitions, per topic, that src selects now. Topics
// named in subscribe or assign that do not exist yet are left out (they are
// picked up when they appear; Kafka auto-creates topics on first produce).
func Resolve(ctx context.Context, adm *kadm.Client, src *stream.KafkaSource) (map[string][]int32, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	out := map[string][]int32{}
	add := func(td kadm.TopicDetail, only []int32) {
		for _, p := range td.Partitions.Numbers() {
			if only == nil || slices.Contains(only, p) {
				out[td.Topic] = append(out[td.Topic], p)
			}
		}
		sort.Slice(out[td.Topic], func(i, j int) bool { return out[td.Topic][i] < out[td.Topic][j] })
	}
	switch src.Mode() {
	case "subscribe":
		for _, t := range src.Topics() {
			if td, ok := topics[t]; ok && td.Err == nil {
				add(td, nil)
			}
		}
	case "subscribe_pattern":
		re, err := src.Pattern()
		if err != nil {
			return nil, err
		}
		for t, td := range topics {
			if td.IsInternal || td.Err != nil || !re.MatchString(t) {
				continue
			}
			add(td, nil)
		}
	case "assign":
		m, err := src.Assignment()
		if err != nil {
			return nil, err
		}
		for t, ps := range m {
			if td, ok := topics[t]; ok && td.Err == nil {
				add(td, ps)
			}
		}
	}
	return out, nil
}

// EndOffsets returns the current end offset (the offset the next produced
// record will get) of every partition in parts.
func EndOffsets(ctx context.Context, adm *kadm.Client, parts map[string][]int32) (Offsets, error) {
	out := Offsets{}
	if len(parts) == 0 {
		return out, nil
	}
	topics := slices.Collect(maps.Keys(parts))
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	for t, ps := range parts {
		for _, p := range ps {
			lo, ok := ends.Lookup(t, p)
			if !ok {
				return nil, fmt.Errorf("no end offset for %s/%d", t, p)
			}
			out.Set(t, p, lo.Offset)
		}
	}
	return out, nil
}
