package orders_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// cpuTime is the CPU time the process has used, user and system: on a
// shared machine a steadier measure of the work per order than the time.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of the CPU times in /proc/PID/stat, USER_HZ, which
// is 100 on Linux's common platforms.
const clockTick = 10 * time.Millisecond

// serverCPU returns the CPU time of each Postgres backend connected to
// gdb's database, by pid, read from /proc: nil on SQLite, or when the
// server does not run on this machine. Other databases' backends, such as
// other tests', are not counted.
func serverCPU(tb testing.TB, gdb *gorm.DB) map[int]time.Duration {
	tb.Helper()
	if db.DialectOf(gdb) != db.Postgres {
		return nil
	}
	var pids []int
	if err := gdb.Raw("SELECT pid FROM pg_stat_activity WHERE datname = current_database()").Scan(&pids).Error; err != nil {
		tb.Fatalf("backends: %v", err)
	}
	out := map[int]time.Duration{}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		// The fields after the command, which is in parentheses: state is
		// the 3rd field of the line, utime and stime the 14th and 15th.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return nil
		}
		user, _ := strconv.ParseInt(f[11], 10, 64)
		sys, _ := strconv.ParseInt(f[12], 10, 64)
		out[pid] = time.Duration(user+sys) * clockTick
	}
	return out
}

// BenchmarkPlace places two-line orders through the orders module's API,
// without HTTP, from 16 goroutines per CPU as a loaded shop's handlers do.
// The lines spread over 20 products, stocked in two warehouses, and 20
// customers, so the orders contend as real traffic does, not on one row.
// It reports the SQL statements per order (stmts/op), the CPU time of the
// process per order (cpu-µs/op) and, on a local Postgres, that of the
// server's backends for the benchmark's database (pg-cpu-µs/op).
//
//	go test ./monolith/orders -run '^$' -bench Place -cpuprofile cpu.out
func BenchmarkPlace(b *testing.B) {
	for _, d := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", dbtest.SQLiteDSN}, {"postgres", dbtest.PostgresDSN}} {
		b.Run(d.name, func(b *testing.B) { benchPlace(b, d.dsn(b)) })
	}
}

func benchPlace(b *testing.B, dsn string) {
	{
		shop := shoptest.New(b, dsn)
		const products, customers = 20, 20
		skus := make([]string, products)
		for i := range skus {
			skus[i] = fmt.Sprintf("BENCH-%02d", i)
			p := shop.CreateProduct(skus[i], int64(100+i))
			shop.AddStock(p.Ref, "AMS1", 1_000_000)
			shop.AddStock(p.Ref, "BER1", 1_000_000)
		}
		ids := make([]int64, customers)
		for i := range ids {
			ids[i] = shop.CreateCustomer(fmt.Sprintf("bench%d@example.com", i)).ID
		}
		stmts := dbtest.CountStatements(b, shop.DB())
		var seq atomic.Int64
		api := shop.Orders()
		b.SetParallelism(16)
		b.ReportAllocs()
		stmts.Store(0)
		cpu0, server0 := cpuTime(b), serverCPU(b, shop.DB())
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := int(seq.Add(1))
				o := orders.NewOrder{CustomerID: ids[n%customers], Lines: []orders.NewLine{
					{SKU: skus[n%products], Quantity: 1},
					{SKU: skus[(n+1+n/products%(products-1))%products], Quantity: 2},
				}}
				if _, err := api.Place(context.Background(), o); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(stmts.Load())/float64(b.N), "stmts/op")
		b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		if server1 := serverCPU(b, shop.DB()); server1 != nil {
			var d time.Duration
			for pid, t := range server1 {
				d += t - server0[pid]
			}
			b.ReportMetric(float64(d.Microseconds())/float64(b.N), "pg-cpu-µs/op")
		}
	}
}
