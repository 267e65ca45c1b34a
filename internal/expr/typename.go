package expr

import "github.com/apache/arrow-go/v18/arrow"

// TypeName spells an Arrow type as Spark SQL does: BIGINT, STRING,
// TIMESTAMP, STRUCT<a: DOUBLE>, ARRAY<STRING>.
func TypeName(t arrow.DataType) string { return typeName(t) }
