package capacity

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Options are the model's assumptions: the load to plan for and how hard
// to run what was measured.
type Options struct {
	HoursPerDay float64 // hours of upload arriving a day
	Channels    float64 // live channels at once, each live all day
	// Utilization is the share of a measured capacity planned for: the
	// rest is headroom for peaks and for the machine's own drift.
	Utilization float64
	// Cores per machine; 0 means the benchmarks' machine (Results.Procs).
	Cores int
	// DefaultLadder and LiveLadder name the UploadCost cases the
	// per-component tables use.
	DefaultLadder, LiveLadder string
}

// DefaultOptions: 1,000 hours of upload a day, 1,000 live channels,
// machines like the benchmarks' run at 70%.
func DefaultOptions() Options {
	return Options{HoursPerDay: 1000, Channels: 1000, Utilization: 0.7, DefaultLadder: "h264", LiveLadder: "live-720p"}
}

// Ladder is what one minute of upload through one ladder cost the whole
// stack (BenchmarkUploadCost).
type Ladder struct {
	Name string
	// CPU seconds: the stack's (MinIO, segflow, the functions and the
	// tools they ran), and MinIO's part of it.
	CPU, MinIOCPU float64
	StoredMB      float64 // the upload and everything made of it
	Requests      float64 // S3 requests MinIO served
	Reads, Lists  float64 // of them: object GETs and HEADs, and listings (the rest write)
	Events        float64 // bucket notifications the router received
	Deliveries    float64 // messages through the queue, each a function call
}

// Writes are the requests that are neither object reads nor listings.
func (l Ladder) Writes() float64 { return l.Requests - l.Reads - l.Lists }

// Functions is the CPU the functions' machines spend: the stack's
// without MinIO's, which is storage's.
func (l Ladder) Functions() float64 { return l.CPU - l.MinIOCPU }

// Inputs are the measured figures the model uses.
type Inputs struct {
	Cores   int
	Ladders []Ladder
	// One router's sustained events per second (each one delivered), and
	// two routers' sharing one queue (BucketToFunction, 16 writers).
	RouterEvents, TwoRoutersEvents float64
	// The relay at its largest measured count (RelayAtSize).
	RelayPublishers                       int
	RelayStreamsPerCore, RelayMiBEach     float64
	RelayMissing, RelayLate, RelayDropped float64
}

// Inputs takes the model's inputs from benchmark results, naming every
// figure that is missing.
func (r Results) Inputs() (Inputs, error) {
	in := Inputs{Cores: r.Procs}
	var missing []string
	get := func(bench, unit string) float64 {
		v, ok := r.Metrics[bench][unit]
		if !ok {
			missing = append(missing, bench+" "+unit)
		}
		return v
	}
	var names []string // in the order the benchmark ran them
	for _, name := range r.Order {
		if l, ok := strings.CutPrefix(name, "UploadCost/"); ok {
			names = append(names, l)
		}
	}
	for _, l := range names {
		b := "UploadCost/" + l
		in.Ladders = append(in.Ladders, Ladder{Name: l, CPU: get(b, "cpu-s/min"), MinIOCPU: get(b, "minio-cpu-s/min"),
			StoredMB: get(b, "stored-MB/min"), Requests: get(b, "s3-requests/min"), Reads: get(b, "s3-reads/min"),
			Lists: get(b, "s3-lists/min"), Events: get(b, "events/min"),
			Deliveries: get(b, "deliveries/min")})
	}
	if len(names) == 0 {
		missing = append(missing, "UploadCost")
	}
	in.RouterEvents = get("BucketToFunction/routers=1", "events/s")
	in.TwoRoutersEvents = get("BucketToFunction/routers=2", "events/s")
	for unit := range r.Metrics["RelayAtSize"] {
		var n int
		if _, err := fmt.Sscanf(unit, "n%d-relay-streams/core", &n); err == nil && n > in.RelayPublishers {
			in.RelayPublishers = n
		}
	}
	if in.RelayPublishers == 0 {
		missing = append(missing, "RelayAtSize n*-relay-streams/core")
	} else {
		p := fmt.Sprintf("n%d-", in.RelayPublishers)
		in.RelayStreamsPerCore = get("RelayAtSize", p+"relay-streams/core")
		in.RelayMiBEach = get("RelayAtSize", p+"relay-MiB/stream")
		in.RelayMissing = get("RelayAtSize", p+"relay-missing-segments")
		in.RelayLate = get("RelayAtSize", p+"relay-late-segments")
		in.RelayDropped = get("RelayAtSize", p+"relay-dropped-segments")
	}
	if in.Cores == 0 {
		missing = append(missing, "the cores of the benchmarks' machine (the -N suffix of a result)")
	}
	if len(missing) > 0 {
		return in, fmt.Errorf("capacity: benchmark output lacks %s (scripts/capacity runs what makes them)", strings.Join(missing, ", "))
	}
	return in, nil
}

// Load is one ladder at the planned hours a day.
type Load struct {
	Ladder
	FunctionMachines int
	StoredTBPerDay   float64
	RequestsPerS     float64
	DeliveriesPerS   float64
}

// Component is one kind of instance: how much of the load one carries at
// the planned utilization, what limits it, and how many the load needs.
type Component struct {
	Name        string
	PerInstance float64 // hours of upload a day, or live channels
	Limit       string
	Needed      int
	Shared      bool // one instance serves every machine by default (not a function or relay machine)
}

// Model is the capacity model: the inputs, the assumptions and what they
// imply.
type Model struct {
	Options Options
	Inputs  Inputs
	Loads   []Load
	VOD     []Component // for Options.HoursPerDay through the default ladder, fewest carried first
	Live    []Component // for Options.Channels, fewest carried first
}

// Build computes the model.
func Build(in Inputs, o Options) (Model, error) {
	if o.Cores == 0 {
		o.Cores = in.Cores
	}
	if o.Utilization <= 0 || o.Utilization > 1 || o.Cores <= 0 || o.HoursPerDay <= 0 || o.Channels <= 0 {
		return Model{}, fmt.Errorf("capacity: options %+v: utilization in (0, 1], cores, hours and channels above 0", o)
	}
	m := Model{Options: o, Inputs: in}
	ladder := func(name string) (Ladder, error) {
		for _, l := range in.Ladders {
			if l.Name == name {
				return l, nil
			}
		}
		return Ladder{}, fmt.Errorf("capacity: no UploadCost/%s result", name)
	}
	vod, err := ladder(o.DefaultLadder)
	live, err2 := ladder(o.LiveLadder)
	if err := errors.Join(err, err2); err != nil {
		return m, err
	}
	cores := float64(o.Cores) * o.Utilization // CPU seconds a machine gives per second
	minutesPerS := o.HoursPerDay * 60 / 86400 // minutes of upload arriving per second
	for _, l := range in.Ladders {
		m.Loads = append(m.Loads, Load{Ladder: l,
			FunctionMachines: ceil(l.Functions() * minutesPerS / cores),
			StoredTBPerDay:   l.StoredMB * o.HoursPerDay * 60 / 1e6,
			RequestsPerS:     l.Requests * minutesPerS,
			DeliveriesPerS:   l.Deliveries * minutesPerS})
	}
	// VOD: hours of upload a day one instance carries. A minute of upload
	// a second is 1,440 hours a day.
	const hoursPerMinutePerS = 86400.0 / 60
	// Storage by its CPU in the real mix of requests (its request rate in
	// BucketToFunction is the whole machine's, router and functions too,
	// so it is no measure of MinIO's).
	storage := func(l Ladder, unit float64) Component {
		return Component{Name: "storage (one MinIO node)", Shared: true, PerInstance: cores / l.MinIOCPU * unit,
			Limit: fmt.Sprintf("CPU: %.1f s a minute of video, %s requests at %.1f ms each", l.MinIOCPU, num(l.Requests), l.MinIOCPU/l.Requests*1000)}
	}
	router := func(l Ladder, unit float64) Component {
		return Component{Name: "router and queue (one router)", Shared: true, PerInstance: in.RouterEvents * o.Utilization / l.Deliveries * unit,
			Limit: fmt.Sprintf("deliveries: %.0f a minute of video against %.0f events/s measured", l.Deliveries, in.RouterEvents)}
	}
	functions := func(l Ladder, unit float64) Component {
		return Component{Name: fmt.Sprintf("function machine (%d cores)", o.Cores), PerInstance: cores / l.Functions() * unit,
			Limit: fmt.Sprintf("CPU: %.1f s a minute of video", l.Functions())}
	}
	m.VOD = []Component{functions(vod, hoursPerMinutePerS), storage(vod, hoursPerMinutePerS), router(vod, hoursPerMinutePerS)}
	for i := range m.VOD {
		m.VOD[i].Needed = ceil(o.HoursPerDay / m.VOD[i].PerInstance)
	}
	// Live: channels one instance carries; a channel makes a minute of
	// video a minute.
	m.Live = []Component{
		{Name: fmt.Sprintf("relay machine (%d cores)", o.Cores), PerInstance: in.RelayStreamsPerCore * cores,
			Limit: fmt.Sprintf("CPU: %.0f streams a core at %d publishers, taken as linear beyond", in.RelayStreamsPerCore, in.RelayPublishers)},
		functions(live, 60), storage(live, 60), router(live, 60),
	}
	for i := range m.Live {
		m.Live[i].Needed = ceil(o.Channels / m.Live[i].PerInstance)
	}
	byCarried := func(cs []Component) {
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].PerInstance < cs[j].PerInstance })
	}
	byCarried(m.VOD)
	byCarried(m.Live)
	return m, nil
}

// FirstShared is the shared component that needs a second instance first.
func FirstShared(cs []Component) Component {
	for _, c := range cs {
		if c.Shared {
			return c
		}
	}
	return Component{}
}

func ceil(f float64) int { return int(math.Ceil(f - 1e-9)) }
