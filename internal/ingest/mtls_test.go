package ingest

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/testutil/certs"
)

// TestIngestOverMTLS ingests from a broker that serves only TLS and requires
// a client certificate, with the client key encrypted and its password held
// in a secret scope (the seed's "Direct mTLS").
func TestIngestOverMTLS(t *testing.T) {
	pki := certs.New(t, "")
	cases := map[string]struct {
		keyFile  string
		password bool
		wantErr  string
	}{
		"legacy encrypted key":     {keyFile: pki.ClientKeyEncFile, password: true},
		"pkcs8 encrypted key":      {keyFile: pki.ClientKeyPKCS8File, password: true},
		"plain key":                {keyFile: pki.ClientKeyFile},
		"encrypted key, no secret": {keyFile: pki.ClientKeyPKCS8File, wantErr: "key_password_ref"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", TLS: pki.ServerTLS()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			e := &env{t: t, dir: t.TempDir(), broker: b}
			if e.prod, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DialTLSConfig(pki.ClientTLS()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner())); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.prod.Close)
			e.open()
			ref := ""
			if c.password {
				if err := e.cat.PutSecret(context.Background(), "kafka", "key_password", []byte(pki.Password)); err != nil {
					t.Fatal(err)
				}
				ref = ", key_password_ref: {scope: kafka, key: key_password}"
			}
			spec := fmt.Sprintf(`name: main.demo.orders
source: {kafka: {subscribe: orders}}
connection:
  bootstrap_servers: "%s"
  mtls: {ca_file: "%s", cert_file: "%s", key_file: "%s"%s}
ingestion: {destination: main.demo.orders_ingestion, commit_interval: 50ms}
`, b.Addr(), pki.CAFile, pki.ClientCertFile, c.keyFile, ref)
			_, err = e.create(spec)
			if c.wantErr != "" {
				if err == nil || !contains(err.Error(), c.wantErr) {
					t.Fatalf("create err = %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.produce("orders", 0, "", "hello", "over", "mtls")
			rows := e.waitRows("main.demo.orders_ingestion", ColValue, 3)
			if rows[0].value != "hello" || rows[2].value != "mtls" {
				t.Fatalf("rows = %v", rows)
			}
		})
	}
}
