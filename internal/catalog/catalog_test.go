package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func open(t *testing.T, dir string) *Catalog {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "catalog.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), Options{DB: db, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStreams(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	s := Stream{Name: "main.demo.orders", Destination: "main.demo.orders_ingestion", Spec: []byte(`{}`), Owner: "alice",
		CreatedAt: time.Now(), StartOffsets: []byte(`{"orders":{"0":5}}`)}
	if err := c.CreateStream(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateStream(ctx, s); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: err = %v", err)
	}
	s2 := s
	s2.Name = "main.demo.other"
	if err := c.CreateStream(ctx, s2); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate destination: err = %v", err)
	}
	if ok, _ := c.Allowed(ctx, s.Destination, "alice", PrivManage); !ok {
		t.Fatal("owner lacks MANAGE on the ingestion table")
	}
	if ok, _ := c.Allowed(ctx, s.Destination, "bob", PrivSelect); ok {
		t.Fatal("bob has SELECT without a grant")
	}
	if err := c.SaveStreamStatus(ctx, s.Name, []byte(`{"state":"running"}`)); err != nil {
		t.Fatal(err)
	}
	// Reopen: everything survives a restart.
	c = open(t, dir)
	got, err := c.GetStream(ctx, s.Name)
	if err != nil || string(got.Status) != `{"state":"running"}` || string(got.StartOffsets) != string(s.StartOffsets) || got.Owner != "alice" {
		t.Fatalf("GetStream = %+v, %v", got, err)
	}
	for _, name := range []string{"main.demo.b", "main.demo.c", "main.other.d"} {
		s3 := s
		s3.Name, s3.Destination = name, name+"_ingestion"
		if err := c.CreateStream(ctx, s3); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListStreams(ctx, "main.demo.", "", 2)
	if err != nil || len(list) != 2 || list[0].Name != "main.demo.b" || list[1].Name != "main.demo.c" {
		t.Fatalf("ListStreams page 1 = %v, %v", list, err)
	}
	list, _ = c.ListStreams(ctx, "main.demo.", "main.demo.c", 2)
	if len(list) != 1 || list[0].Name != "main.demo.orders" {
		t.Fatalf("ListStreams page 2 = %v", list)
	}
	if err := c.DeleteStream(ctx, s.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetStream(ctx, s.Name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if g, _ := c.Grants(ctx, s.Destination); len(g) != 0 {
		t.Fatalf("grants left after delete: %v", g)
	}
}

func TestSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	if err := c.PutSecret(ctx, "kafka", "key_password", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := c.db.QueryRow(`SELECT sealed FROM sluice_secrets`).Scan(&raw); err != nil || bytes.Contains(raw, []byte("s3cret")) {
		t.Fatalf("secret stored in clear (err %v)", err)
	}
	c = open(t, dir) // the key file is reused across restarts
	v, err := c.Secret(ctx, "kafka", "key_password")
	if err != nil || string(v) != "s3cret" {
		t.Fatalf("Secret = %q, %v", v, err)
	}
	list, _ := c.ListSecrets(ctx, "")
	if len(list) != 1 || list[0].Key != "key_password" {
		t.Fatalf("ListSecrets = %v", list)
	}
	if _, err := c.Secret(ctx, "kafka", "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	// A sealed value moved to another name does not open.
	if _, err := c.db.Exec(`INSERT INTO sluice_secrets SELECT scope, 'moved', nonce, sealed, created_at FROM sluice_secrets`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Secret(ctx, "kafka", "moved"); err == nil {
		t.Fatal("moved secret decrypted")
	}
	// Another data directory's key cannot read it.
	other := open(t, t.TempDir())
	other.db = c.db
	if _, err := other.Secret(ctx, "kafka", "key_password"); err == nil {
		t.Fatal("secret opened with a different key")
	}
}

func TestModels(t *testing.T) {
	ctx := context.Background()
	c := open(t, t.TempDir())
	now := time.Now()
	if err := c.CreateTrainingSet(ctx, TrainingSet{Name: "main.ml.ts", Spec: []byte(`{}`), Plan: []byte(`{}`), Owner: "alice", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutModel(ctx, Model{Name: "main.ml.m", TrainingSet: "main.ml.nope", Owner: "alice", CreatedAt: now}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("model on a missing training set: %v", err)
	}
	if l, err := c.ListModels(ctx); err != nil || len(l) != 0 {
		t.Fatalf("ListModels on none = %v, %v", l, err)
	}
	for _, name := range []string{"main.ml.b", "main.ml.a"} {
		if err := c.PutModel(ctx, Model{Name: name, TrainingSet: "main.ml.ts", Owner: "alice", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.ListModels(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "main.ml.a" || l[1].Name != "main.ml.b" || l[0].TrainingSet != "main.ml.ts" || l[0].Owner != "alice" {
		t.Fatalf("ListModels = %+v, %v", l, err)
	}
	if err := c.DeleteModel(ctx, "main.ml.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetModel(ctx, "main.ml.a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := c.DeleteModel(ctx, "main.ml.a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing model: %v", err)
	}
	if _, err := c.GetTrainingSet(ctx, "main.ml.ts"); err != nil {
		t.Fatalf("deleting a model deleted its training set: %v", err)
	}
	if l, _ := c.ListModels(ctx); len(l) != 1 || l[0].Name != "main.ml.b" {
		t.Fatalf("ListModels after delete = %+v", l)
	}
}
