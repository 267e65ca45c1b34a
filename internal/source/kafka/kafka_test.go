package kafka

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/testutil/certs"
)

func TestOffsetsRoundTrip(t *testing.T) {
	o := Offsets{}
	o.Set("orders", 2, 40)
	o.Set("orders", 0, 7)
	o.Set("a", 1, 0)
	enc := o.Encode()
	if enc != `{"a":{"1":0},"orders":{"0":7,"2":40}}` {
		t.Fatalf("Encode = %s (must be deterministic)", enc)
	}
	d, err := DecodeOffsets(enc)
	if err != nil || !d.Equal(o) {
		t.Fatalf("DecodeOffsets = %v, %v", d, err)
	}
	if o.String() != "a/1=0 orders/0=7 orders/2=40" {
		t.Fatal(o.String())
	}
	c := o.Clone()
	c.Set("orders", 0, 8)
	if v, _ := o.Get("orders", 0); v != 7 {
		t.Fatal("Clone shares maps")
	}
	if d, err := DecodeOffsets(""); d != nil || err != nil {
		t.Fatalf(`DecodeOffsets("") = %v, %v`, d, err)
	}
}

// FuzzDecodeOffsets: decoding never panics, and what decodes re-encodes to
// a form that decodes to the same offsets.
func FuzzDecodeOffsets(f *testing.F) {
	f.Add(`{"orders":{"0":7,"2":40}}`)
	f.Add(`{}`)
	f.Add(`null`)
	f.Add(`{"t":{"x":1}}`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := DecodeOffsets(s)
		if err != nil {
			return
		}
		o2, err := DecodeOffsets(o.Encode())
		if err != nil || !o2.Equal(o) {
			t.Fatalf("re-decode of %q: %v, %v vs %v", o.Encode(), err, o2, o)
		}
	})
}

func TestTLSConfigKeys(t *testing.T) {
	pki := certs.New(t, "")
	secret := func(_ context.Context, scope, key string) ([]byte, error) {
		if scope == "kafka" && key == "pw" {
			return []byte(pki.Password), nil
		}
		if key == "wrong" {
			return []byte("not the password"), nil
		}
		return nil, errors.New("no such secret")
	}
	cases := map[string]struct {
		key  string
		ref  *stream.SecretRef
		want string // "" means success
	}{
		"plain":                 {key: pki.ClientKeyFile},
		"legacy encrypted":      {key: pki.ClientKeyEncFile, ref: &stream.SecretRef{Scope: "kafka", Key: "pw"}},
		"pkcs8 encrypted":       {key: pki.ClientKeyPKCS8File, ref: &stream.SecretRef{Scope: "kafka", Key: "pw"}},
		"encrypted, no ref":     {key: pki.ClientKeyPKCS8File, want: "key_password_ref"},
		"wrong password":        {key: pki.ClientKeyPKCS8File, ref: &stream.SecretRef{Scope: "kafka", Key: "wrong"}, want: "decrypting"},
		"missing secret":        {key: pki.ClientKeyEncFile, ref: &stream.SecretRef{Scope: "kafka", Key: "nope"}, want: "key_password_ref"},
		"missing key file":      {key: pki.Dir + "/nope.pem", want: "connection.mtls.key_file"},
		"cert file as key file": {key: pki.CAFile, want: "loading the client certificate and key"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			conn := stream.Connection{BootstrapServers: "127.0.0.1:9093", MTLS: &stream.MTLS{
				CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: c.key, KeyPasswordRef: c.ref}}
			cfg, err := TLSConfig(context.Background(), conn, secret)
			if c.want == "" {
				if err != nil || len(cfg.Certificates) != 1 || cfg.ServerName != "127.0.0.1" {
					t.Fatalf("TLSConfig = %v, %v", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
	if _, err := os.Stat(pki.ClientKeyPKCS8File); err != nil {
		t.Fatal(err)
	}
}
