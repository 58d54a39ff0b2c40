// Command profile runs the proxy in front of a backend with a CPU or
// allocation profile, to see where the data plane spends its time under
// wrk. It is a development tool; bench/proxy/run.sh measures.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/stranglerkit/strangler/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18085", "data plane address")
	legacy := flag.String("legacy", "http://127.0.0.1:19001", "legacy URL")
	routes := flag.String("routes", "", "routes file")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	mem := flag.String("memprofile", "", "write an allocation profile here")
	seconds := flag.Duration("for", 10*time.Second, "profile duration, from the first request")
	accessLog := flag.String("access-log", os.DevNull, "access log file")
	flag.Parse()
	dir, err := os.MkdirTemp("", "proxy-profile")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := proxy.Config{Addr: *addr, AdminAddr: "127.0.0.1:0", AdminToken: "profile-token-0123456789", Legacy: *legacy, RoutesFile: *routes}
	cfg.AccessLog.Path = *accessLog
	cfg.SetDefaults(dir)
	p, err := proxy.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		if *cpu == "" && *mem == "" {
			return
		}
		time.Sleep(2 * time.Second)
		if *cpu != "" {
			f, err := os.Create(*cpu)
			if err != nil {
				log.Fatal(err)
			}
			_ = pprof.StartCPUProfile(f)
			time.Sleep(*seconds)
			pprof.StopCPUProfile()
			f.Close()
		}
		if *mem != "" {
			f, err := os.Create(*mem)
			if err != nil {
				log.Fatal(err)
			}
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		log.Print("profile written")
	}()
	go func() {
		// Report heap allocations per second, to divide by wrk's rate.
		var prev runtime.MemStats
		runtime.ReadMemStats(&prev)
		for range time.Tick(2 * time.Second) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			log.Printf("mallocs/s %d, GC cycles %d", (ms.Mallocs-prev.Mallocs)/2, ms.NumGC-prev.NumGC)
			prev = ms
		}
	}()
	go func() {
		<-p.Started()
		log.Printf("proxy on %s", p.Addr())
	}()
	if err := p.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
