package catalog

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoSecretKey is returned by the secret methods when the catalog was
// opened without a SecretKey.
var ErrNoSecretKey = errors.New("catalog: no secret key configured")

// LoadOrCreateKey reads the 32-byte secret key kept hex-encoded in path,
// creating it (mode 0600) with fresh random bytes when it does not exist.
// The key never leaves the machine; whoever reads it can read the secrets.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("secret key file %s is corrupt: want 64 hex digits", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading secret key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating secret key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

func (c *Catalog) aead() (cipher.AEAD, error) {
	if c.sealKey == nil {
		return nil, ErrNoSecretKey
	}
	blk, err := aes.NewCipher(c.sealKey)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// PutSecret stores value under scope/key, sealed with AES-256-GCM (the scope
// and key are authenticated with it, so a sealed value cannot be moved to
// another name). It replaces an existing value.
func (c *Catalog) PutSecret(ctx context.Context, scope, key string, value []byte) error {
	if scope == "" || key == "" {
		return errors.New("secret scope and key must not be empty")
	}
	a, err := c.aead()
	if err != nil {
		return err
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := a.Seal(nil, nonce, value, []byte(scope+"\x00"+key))
	_, err = c.db.ExecContext(ctx, `INSERT INTO sluice_secrets (scope, key, nonce, sealed, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET nonce = excluded.nonce, sealed = excluded.sealed, created_at = excluded.created_at`,
		scope, key, nonce, sealed, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("storing secret %s/%s: %w", scope, key, err)
	}
	return nil
}

// Secret returns the value stored under scope/key, or ErrNotFound. Only
// server-side code that needs the value (e.g. to decrypt a TLS key) calls it;
// no API returns it.
func (c *Catalog) Secret(ctx context.Context, scope, key string) ([]byte, error) {
	a, err := c.aead()
	if err != nil {
		return nil, err
	}
	var nonce, sealed []byte
	err = c.db.QueryRowContext(ctx, `SELECT nonce, sealed FROM sluice_secrets WHERE scope = ? AND key = ?`, scope, key).Scan(&nonce, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("secret %s/%s: %w (store it with: sluice secret put %s %s)", scope, key, ErrNotFound, scope, key)
	}
	if err != nil {
		return nil, err
	}
	v, err := a.Open(nil, nonce, sealed, []byte(scope+"\x00"+key))
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s cannot be decrypted with this data directory's key: %w", scope, key, err)
	}
	return v, nil
}

// SecretInfo describes a stored secret without its value.
type SecretInfo struct {
	Scope     string    `json:"scope"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// ListSecrets lists the secrets of scope ("" = all scopes), without values.
func (c *Catalog) ListSecrets(ctx context.Context, scope string) ([]SecretInfo, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT scope, key, created_at FROM sluice_secrets WHERE ? = '' OR scope = ? ORDER BY scope, key`, scope, scope)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SecretInfo
	for rows.Next() {
		var s SecretInfo
		var ts int64
		if err := rows.Scan(&s.Scope, &s.Key, &ts); err != nil {
			return nil, err
		}
		s.CreatedAt = time.UnixMicro(ts).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteSecret removes scope/key; ErrNotFound when absent.
func (c *Catalog) DeleteSecret(ctx context.Context, scope, key string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM sluice_secrets WHERE scope = ? AND key = ?`, scope, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("secret %s/%s: %w", scope, key, ErrNotFound)
	}
	return nil
}
