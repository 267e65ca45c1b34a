package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// Privilege is a privilege on a securable (a table, by three-part name), as
// in Unity Catalog: SELECT reads it (and the stream it ingests), MODIFY
// writes it, MANAGE deletes it and grants on it. ALL PRIVILEGES implies all.
type Privilege string

// Privileges.
const (
	PrivSelect Privilege = "SELECT"
	PrivModify Privilege = "MODIFY"
	PrivManage Privilege = "MANAGE"
	PrivAll    Privilege = "ALL PRIVILEGES"
)

// ParsePrivilege checks p names a privilege.
func ParsePrivilege(p string) (Privilege, error) {
	switch v := Privilege(p); v {
	case PrivSelect, PrivModify, PrivManage, PrivAll:
		return v, nil
	}
	return "", fmt.Errorf("unknown privilege %q: use SELECT, MODIFY, MANAGE or ALL PRIVILEGES", p)
}

type execer interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

func grantTx(ctx context.Context, db execer, securable, principal string, p Privilege) error {
	_, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO sluice_grants (securable, principal, privilege) VALUES (?, ?, ?)`, securable, principal, string(p))
	if err != nil {
		return fmt.Errorf("granting %s on %s to %s: %w", p, securable, principal, err)
	}
	return nil
}

// Grant gives principal privilege p on securable.
func (c *Catalog) Grant(ctx context.Context, securable, principal string, p Privilege) error {
	return grantTx(ctx, c.db, securable, principal, p)
}

// Revoke takes privilege p on securable away from principal.
func (c *Catalog) Revoke(ctx context.Context, securable, principal string, p Privilege) error {
	_, err := c.db.ExecContext(ctx, `DELETE FROM sluice_grants WHERE securable = ? AND principal = ? AND privilege = ?`, securable, principal, string(p))
	return err
}

// Grants lists the privileges held on securable, principal -> privileges.
func (c *Catalog) Grants(ctx context.Context, securable string) (map[string][]Privilege, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT principal, privilege FROM sluice_grants WHERE securable = ? ORDER BY principal, privilege`, securable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]Privilege{}
	for rows.Next() {
		var who, p string
		if err := rows.Scan(&who, &p); err != nil {
			return nil, err
		}
		out[who] = append(out[who], Privilege(p))
	}
	return out, rows.Err()
}

// Allowed reports whether principal holds p (or ALL PRIVILEGES) on securable.
func (c *Catalog) Allowed(ctx context.Context, securable, principal string, p Privilege) (bool, error) {
	g, err := c.Grants(ctx, securable)
	if err != nil {
		return false, err
	}
	return slices.Contains(g[principal], p) || slices.Contains(g[principal], PrivAll), nil
}

// ScopeSecurable is the securable name of a secret scope in the grants
// table. MANAGE on it allows storing, deleting, listing and using (in a
// stream's connection) the scope's secrets.
func ScopeSecurable(scope string) string { return "secret_scope:" + scope }

// ClaimScope gives principal MANAGE on a secret scope that nobody holds
// yet, and reports whether principal now holds MANAGE on it (true if it
// already did, false if someone else owns the scope). It is one
// transaction, so two first writers cannot both claim a scope.
func (c *Catalog) ClaimScope(ctx context.Context, scope, principal string) (bool, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	sec := ScopeSecurable(scope)
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sluice_grants WHERE securable = ?`, sec).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		if err := grantTx(ctx, tx, sec, principal, PrivManage); err != nil {
			return false, err
		}
		return true, tx.Commit()
	}
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sluice_grants WHERE securable = ? AND principal = ? AND privilege IN (?, ?)`,
		sec, principal, string(PrivManage), string(PrivAll)).Scan(&held); err != nil {
		return false, err
	}
	return held > 0, tx.Commit()
}
