package provider

import (
	"time"
)

// The local runtime scales on request rate as OpenFaaS CE does with its
// Prometheus alert: above scaleUpRPS calls per second over the last
// rateWindow (measured over at least rateMinSpan), a function gains
// com.openfaas.scale.factor percent of its max replicas (default 20, 0
// turns it off), again every scaleUpEvery while the rate stays high; when
// the rate falls back, it returns to its min. A function scaled by hand
// keeps its replicas until the rate itself crosses the line.
const (
	LabelScaleFactor = "com.openfaas.scale.factor"
	scaleUpRPS       = 5.0
	rateWindow       = 10 * time.Second
	rateMinSpan      = 5 * time.Second
	scaleUpEvery     = 5 * time.Second
	defaultFactor    = 20
)

// rateSample is the invocation count at one moment.
type rateSample struct {
	at time.Time
	n  uint64
}

// callRateLocked records a sample (at most one a second) and returns the call rate
// over the window, or -1 while the samples span less than rateMinSpan.
// f.mu is held.
func (f *function) callRateLocked(now time.Time) float64 {
	if len(f.samples) == 0 || now.Sub(f.samples[len(f.samples)-1].at) >= time.Second {
		f.samples = append(f.samples, rateSample{at: now, n: f.invocations})
	}
	for len(f.samples) > 1 && now.Sub(f.samples[0].at) > rateWindow {
		f.samples = f.samples[1:]
	}
	first := f.samples[0]
	span := now.Sub(first.at)
	if span < rateMinSpan {
		return -1
	}
	return float64(f.invocations-first.n) / span.Seconds()
}

// autoscaleLocked moves the desired replicas with the call rate and returns
// the replicas to stop after unlocking. f.mu is held.
func (f *function) autoscaleLocked(now time.Time) []*process {
	factor := labelUint(f.labels(), LabelScaleFactor, defaultFactor)
	rate := f.callRateLocked(now)
	if factor == 0 || rate < 0 {
		return nil
	}
	switch high := rate > scaleUpRPS; {
	case high && (!f.firing || now.Sub(f.lastScaleUp) >= scaleUpEvery):
		f.firing, f.lastScaleUp = true, now
		max := f.scaleMax()
		step := (max*factor + 99) / 100
		n := f.replicas + step
		if n > max {
			n = max
		}
		if n <= f.replicas {
			return nil
		}
		f.rt.log.Info("scaling up on call rate", "function", f.name, "rps", rate, "replicas", n)
		f.replicas = n
		for uint64(len(f.procs)) < n {
			if err := f.startLocked(); err != nil {
				f.rt.log.Error("scale up", "function", f.name, "err", err)
				break
			}
		}
	case !high && f.firing:
		f.firing = false
		if min := f.scaleMin(); f.replicas > min {
			f.rt.log.Info("call rate back down, scaling to min", "function", f.name, "rps", rate, "replicas", min)
			return f.shrinkLocked(min)
		}
	}
	return nil
}
