// Package certs builds a throwaway PKI for tests: a CA, a server certificate
// for 127.0.0.1 and localhost, and a client certificate, written as PEM files
// that both Go and OpenSSL-based tools (kcat, librdkafka) read.
//
// The client key is written three ways, because users bring keys in all of
// them and sluice's TLS loader must be tested against each:
//
//   - client-key.pem: unencrypted PKCS#8 ("PRIVATE KEY").
//   - client-key-enc.pem: legacy OpenSSL PEM encryption of the SEC1 key
//     ("EC PRIVATE KEY" with Proc-Type/DEK-Info headers, AES-256-CBC). Go
//     decrypts it with the deprecated x509.DecryptPEMBlock; its key
//     derivation is a single MD5 round, so it is weak and only for
//     compatibility with old tooling.
//   - client-key-enc-pkcs8.pem: PKCS#8 EncryptedPrivateKeyInfo ("ENCRYPTED
//     PRIVATE KEY", PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC). This is
//     what `openssl genpkey -aes256` and OpenSSL 3 write by default. Go's
//     standard library cannot decrypt it; a loader needs a small PBES2
//     decoder (encoding/asn1 + crypto/pbkdf2 + crypto/cipher) or
//     github.com/youmark/pkcs8.
//
// All keys are ECDSA P-256; certificates are valid from an hour ago for 24 hours.
package certs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Password encrypts client-key-enc.pem and client-key-enc-pkcs8.pem.
const Password = "sluice-test-password"

// PKI is a CA with one server and one client certificate. Its files live in
// Dir and are removed with it; the tls.Configs it returns are fresh copies
// that the caller may modify.
type PKI struct {
	Dir string

	CAFile             string // ca.pem: the CA certificate
	ServerCertFile     string // server.pem: server certificate (127.0.0.1, ::1, localhost)
	ServerKeyFile      string // server-key.pem: PKCS#8, unencrypted
	ClientCertFile     string // client.pem: client certificate, CN=sluice-client
	ClientKeyFile      string // client-key.pem: PKCS#8, unencrypted
	ClientKeyEncFile   string // client-key-enc.pem: legacy PEM encryption (DEK-Info, AES-256-CBC)
	ClientKeyPKCS8File string // client-key-enc-pkcs8.pem: encrypted PKCS#8 (PBES2, PBKDF2-SHA256, AES-256-CBC)
	Password           string // the password of both encrypted client keys

	CA     *x509.Certificate
	server tls.Certificate
	client tls.Certificate
}

// New generates a PKI and writes its PEM files into dir, or into a
// t.TempDir() when dir is "". It fails the test on any error.
func New(t testing.TB, dir string) *PKI {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p, err := generate(dir)
	if err != nil {
		t.Fatalf("certs: %v", err)
	}
	return p
}

// ServerTLS returns a server config presenting the server certificate and
// requiring a client certificate signed by the CA (mTLS).
func (p *PKI) ServerTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.server},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// ClientTLS returns a client config trusting the CA and presenting the
// client certificate. ServerName is left empty: kgo fills it in from the
// address it dials, and the server certificate covers 127.0.0.1.
func (p *PKI) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{p.client},
	}
}

func generate(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-time.Hour), now.Add(24*time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sluice test CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}

	leaf := func(cn string, usage x509.ExtKeyUsage, server bool) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generating %s key: %w", cn, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, fmt.Errorf("creating %s certificate: %w", cn, err)
		}
		return der, key, nil
	}
	serverDER, serverKey, err := leaf("localhost", x509.ExtKeyUsageServerAuth, true)
	if err != nil {
		return nil, err
	}
	clientDER, clientKey, err := leaf("sluice-client", x509.ExtKeyUsageClientAuth, false)
	if err != nil {
		return nil, err
	}

	p := &PKI{
		Dir:                dir,
		CAFile:             filepath.Join(dir, "ca.pem"),
		ServerCertFile:     filepath.Join(dir, "server.pem"),
		ServerKeyFile:      filepath.Join(dir, "server-key.pem"),
		ClientCertFile:     filepath.Join(dir, "client.pem"),
		ClientKeyFile:      filepath.Join(dir, "client-key.pem"),
		ClientKeyEncFile:   filepath.Join(dir, "client-key-enc.pem"),
		ClientKeyPKCS8File: filepath.Join(dir, "client-key-enc-pkcs8.pem"),
		Password:           Password,
		CA:                 ca,
	}

	serverKeyPEM, err := pkcs8PEM(serverKey)
	if err != nil {
		return nil, err
	}
	clientKeyPEM, err := pkcs8PEM(clientKey)
	if err != nil {
		return nil, err
	}
	clientKeyEnc, err := legacyEncryptedPEM(clientKey, Password)
	if err != nil {
		return nil, err
	}
	clientKeyPKCS8, err := pkcs8EncryptedPEM(clientKey, Password)
	if err != nil {
		return nil, err
	}
	serverPEM := certPEM(serverDER)
	clientPEM := certPEM(clientDER)

	for path, data := range map[string][]byte{
		p.CAFile:             certPEM(caDER),
		p.ServerCertFile:     serverPEM,
		p.ServerKeyFile:      serverKeyPEM,
		p.ClientCertFile:     clientPEM,
		p.ClientKeyFile:      clientKeyPEM,
		p.ClientKeyEncFile:   clientKeyEnc,
		p.ClientKeyPKCS8File: clientKeyPKCS8,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}

	if p.server, err = tls.X509KeyPair(serverPEM, serverKeyPEM); err != nil {
		return nil, fmt.Errorf("loading server key pair: %w", err)
	}
	if p.client, err = tls.X509KeyPair(clientPEM, clientKeyPEM); err != nil {
		return nil, fmt.Errorf("loading client key pair: %w", err)
	}
	return p, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pkcs8PEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// legacyEncryptedPEM writes the key as OpenSSL's "traditional" encrypted PEM.
func legacyEncryptedPEM(key *ecdsa.PrivateKey, password string) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling EC key: %w", err)
	}
	//nolint:staticcheck // SA1019: the legacy format is the point here.
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte(password), x509.PEMCipherAES256)
	if err != nil {
		return nil, fmt.Errorf("encrypting EC key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// Object identifiers from RFC 8018 (PKCS #5 v2.1) and NIST.
var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// pkcs8Iterations is low on purpose: tests decrypt these keys often.
const pkcs8Iterations = 2048

// pkcs8EncryptedPEM writes the key as a PKCS#8 EncryptedPrivateKeyInfo
// (RFC 5958) with PBES2 (RFC 8018 section 6.2): PBKDF2-HMAC-SHA256 and
// AES-256-CBC, the combination OpenSSL 3 writes by default.
func pkcs8EncryptedPEM(key *ecdsa.PrivateKey, password string) ([]byte, error) {
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshalling key: %w", err)
	}
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha256.New, password, salt, pkcs8Iterations, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving key: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	data := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)

	type pbkdf2Params struct {
		Salt       []byte
		Iterations int
		PRF        pkix.AlgorithmIdentifier
	}
	type pbes2Params struct {
		KDF pkix.AlgorithmIdentifier
		Enc pkix.AlgorithmIdentifier
	}
	type encryptedPrivateKeyInfo struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	raw := func(v any) (asn1.RawValue, error) {
		b, err := asn1.Marshal(v)
		return asn1.RawValue{FullBytes: b}, err
	}
	kdfParams, err := raw(pbkdf2Params{
		Salt:       salt,
		Iterations: pkcs8Iterations,
		PRF:        pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return nil, err
	}
	ivParam, err := raw(iv)
	if err != nil {
		return nil, err
	}
	schemeParams, err := raw(pbes2Params{
		KDF: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: kdfParams},
		Enc: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: ivParam},
	})
	if err != nil {
		return nil, err
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algo: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: schemeParams},
		Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("marshalling encrypted key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}
