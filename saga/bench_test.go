package saga

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSaga runs the three-step test saga, its participant under the
// guard in the same SQLite database, from Start to Wait: the cost of the
// saga log (one write per step, see TestSagaLogWrites) and of the guard
// on the path.
func BenchmarkSaga(b *testing.B) {
	ctx := context.Background()
	e, err := openEnv(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	part := &participant{env: e, plan: newPlan()}
	o, err := New(Config{Store: e.store, Definitions: []*Definition{part.definition("bench", fastRetry, time.Minute)}})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	b.Cleanup(func() { stop(); <-done; _ = o.Close() })
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := o.Start(ctx, "bench", id, map[string]string{}); err != nil {
			b.Fatal(err)
		}
		if s, err := o.Wait(ctx, id); err != nil || s.State != Completed {
			b.Fatalf("%s: %v %v", id, err, s)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sagas/s")
}
