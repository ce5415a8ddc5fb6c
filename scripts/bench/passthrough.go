package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// loadResult is the outcome of a closed-loop GET load.
type loadResult struct {
	OK, Errors int
	Elapsed    time.Duration
	Lat        []time.Duration
	FirstErr   error
}

// loadGET runs conc keep-alive clients, each GETting url in a loop for d,
// after a short warm-up that is not counted.
func loadGET(ctx context.Context, url string, conc int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}
	run := func(d time.Duration, record bool) loadResult {
		var mu sync.Mutex
		var res loadResult
		var wg sync.WaitGroup
		start := time.Now()
		end := start.Add(d)
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := make([]time.Duration, 0, 4096)
				errs := 0
				var firstErr error
				for ctx.Err() == nil {
					t0 := time.Now()
					if !t0.Before(end) {
						break
					}
					if err := get(); err != nil {
						errs++
						if firstErr == nil {
							firstErr = err
						}
						continue
					}
					lat = append(lat, time.Since(t0))
				}
				mu.Lock()
				res.OK += len(lat)
				res.Errors += errs
				if res.FirstErr == nil {
					res.FirstErr = firstErr
				}
				if record {
					res.Lat = append(res.Lat, lat...)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		res.Elapsed = time.Since(start)
		return res
	}
	run(min(d/5, 500*time.Millisecond), false)
	return run(d, true)
}

// scenPassthrough measures proxied GETs, and the same load straight at the
// backend so the table shows what the proxy costs.
func scenPassthrough(e *env) error {
	name := fmt.Sprintf("passthrough c=%d", e.opt.Conc)
	direct := loadGET(e.ctx, "http://"+e.be.addr()+"/plain", e.opt.Conc, e.opt.Duration)
	if err := e.st.alive(); err != nil {
		return err
	}
	proxied := loadGET(e.ctx, e.st.url("/plain"), e.opt.Conc, e.opt.Duration)
	if proxied.OK == 0 {
		return fmt.Errorf("no proxied request succeeded: %v", proxied.FirstErr)
	}
	ps, ds := summarize(proxied.Lat), summarize(direct.Lat)
	e.set(name, "proxied req/s", "%.0f", higherBetter, float64(proxied.OK)/proxied.Elapsed.Seconds())
	e.setLatency(name, "proxied latency", ps)
	e.set(name, "proxied errors", "%.0f", lowerBetter, float64(proxied.Errors))
	e.set(name, "direct-to-backend req/s", "%.0f", higherBetter, float64(direct.OK)/direct.Elapsed.Seconds())
	e.set(name, "direct-to-backend latency p50 (ms)", "%.2f", lowerBetter, float64(ds.P50)/1e6)
	e.set(name, "proxy overhead p50 (ms)", "%.2f", lowerBetter, float64(ps.P50-ds.P50)/1e6)
	if proxied.Errors > 0 {
		e.log.Warn().Int("errors", proxied.Errors).AnErr("first", proxied.FirstErr).Msg("passthrough errors")
	}
	return nil
}
