package online

// Hooks for the external tests (package online_test, which may import
// sluicetest: sluicetest imports node, which imports this package).

// RedisRowKey returns the Redis key of an entity's row.
func RedisRowKey(r *Redis, table string, k Key) string { return string(r.rowKey(nil, table, k)) }

// BadValue is a Value of an unknown kind.
var BadValue = Value{kind: 99}
