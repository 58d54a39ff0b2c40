// Package sqltext renders database values as text, one way for backfill
// and verify: the aggregate id a backfill gives a row is the key verify
// reports for the same row, whatever the key's type.
package sqltext

import (
	"fmt"
	"strconv"
	"time"
)

// KeyExpr is the SQL expression for the text of the key column col (quoted
// as the query needs): the database's own rendering, which backfill's
// watermark query also matches outbox aggregate ids against in SQL, so that
// a float or boolean key reads the same in Go and in SQL.
func KeyExpr(col string) string { return "CAST(" + col + " AS TEXT)" }

// KeyColumn is the name a query gives KeyExpr in its select list.
const KeyColumn = "cf_key_text"

// Text renders a value a database driver returned as text: nil as "",
// bytes as a string, numbers in decimal without an exponent, booleans as
// true or false, times in RFC 3339 in UTC.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
