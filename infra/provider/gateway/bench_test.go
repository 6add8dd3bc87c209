package gateway_test

import (
	"github.com/segflow/segflow/infra/internal/testgw"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func timedPost(tb testing.TB, c *http.Client, url string) time.Duration {
	start := time.Now()
	resp, err := c.Post(url, "text/plain", strings.NewReader("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != 200 {
		tb.Fatalf("%s = %d", url, resp.StatusCode)
	}
	return d
}

// BenchmarkColdStart times a call to a function that has no replica, from
// the request to the full response, through the gateway.
func BenchmarkColdStart(b *testing.B) {
	g := testgw.Start(b)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("cold", nil, nil))
	c := &http.Client{}
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		g.MustDo(202, "POST", "/system/scale-function/cold", types.ScaleServiceRequest{ServiceName: "cold", Replicas: 0})
		g.WaitReplicas("cold", 0, 20*time.Second)
		c.CloseIdleConnections()
		b.StartTimer()
		ds = append(ds, timedPost(b, c, g.URL+"/function/cold"))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(ds, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(ds, 99).Microseconds())/1000, "p99-ms")
}

// BenchmarkWarmOverhead calls the same function binary directly and through
// the gateway, interleaved in one run, and reports the gateway's added
// latency at p50 and p99.
func BenchmarkWarmOverhead(b *testing.B) {
	g := testgw.Start(b)
	g.MustDo(202, "POST", "/system/functions", testgw.ProbeDeployment("warm", nil, nil))
	// The runtime's own build of the function, run by hand on its own port.
	bin := filepath.Join(g.Home, "state", "functions", "warm", "handler")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	direct := exec.Command(bin)
	direct.Env = append(os.Environ(), "port="+itoa(port))
	if err := direct.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { direct.Process.Kill(); direct.Wait() }()
	directURL := "http://127.0.0.1:" + itoa(port) + "/"
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for i := 0; i < 200; i++ { // warm both paths and wait for the direct one
		if _, err := c.Post(directURL, "text/plain", strings.NewReader("x")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 50; i++ {
		timedPost(b, c, directURL)
		timedPost(b, c, g.URL+"/function/warm")
	}
	var dd, dg []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dd = append(dd, timedPost(b, c, directURL))
		dg = append(dg, timedPost(b, c, g.URL+"/function/warm"))
	}
	b.StopTimer()
	p50d, p50g := percentile(dd, 50), percentile(dg, 50)
	b.ReportMetric(float64(p50d.Microseconds())/1000, "direct-p50-ms")
	b.ReportMetric(float64(p50g.Microseconds())/1000, "gateway-p50-ms")
	b.ReportMetric(float64((p50g-p50d).Microseconds())/1000, "overhead-p50-ms")
	b.ReportMetric(float64((percentile(dg, 99)-percentile(dd, 99)).Microseconds())/1000, "overhead-p99-ms")
}

func itoa(n int) string { return strconv.Itoa(n) }
