package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"
)

// Lease is one admitted call: where to send it, and Done to call after.
type Lease struct {
	Addr string
	Cold bool
	f    *function
}

// Done ends the call's in-flight accounting.
func (l *Lease) Done() { l.f.release() }

// Acquire admits a call to name, starting a replica when none runs. It
// fails with ErrNotFound or ErrTooMany.
func (rt *Runtime) Acquire(name string) (*Lease, error) {
	f, err := rt.get(name)
	if err != nil {
		return nil, err
	}
	addr, cold, err := f.acquire()
	if err != nil {
		return nil, err
	}
	return &Lease{Addr: addr, Cold: cold, f: f}, nil
}

// Invoke proxies an HTTP call to the function; subPath is what followed
// /function/<name>. A function that cannot be reached or dies mid-call gives
// 502, as the OpenFaaS gateway does; one that is at max_inflight gives 429.
// Like the OpenFaaS gateway, it gives the call an X-Call-Id (unless the
// caller did) and an X-Start-Time, on the request and on the answer.
func (rt *Runtime) Invoke(w http.ResponseWriter, r *http.Request, name, subPath string) {
	start := time.Now()
	callID := r.Header.Get("X-Call-Id")
	if callID == "" {
		callID = nuid.Next()
	}
	startTime := strconv.FormatInt(start.UnixNano(), 10)
	w.Header().Set("X-Call-Id", callID)
	w.Header().Set("X-Start-Time", startTime)
	if err := bufferBody(w, r); err != nil {
		rt.metrics.invocations.WithLabelValues(name, strconv.Itoa(http.StatusRequestTimeout)).Inc()
		http.Error(w, fmt.Sprintf("function %s: request body: %v", name, err), http.StatusRequestTimeout)
		return
	}
	lease, err := rt.Acquire(name)
	if err != nil {
		code := StatusOf(err)
		rt.metrics.invocations.WithLabelValues(name, strconv.Itoa(code)).Inc()
		http.Error(w, err.Error(), code)
		return
	}
	defer lease.Done()
	code := http.StatusOK
	rp := &httputil.ReverseProxy{
		Transport: rt.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: lease.Addr})
			pr.Out.URL.Path = "/" + subPath
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Call-Id", callID)
			pr.Out.Header.Set("X-Start-Time", startTime)
		},
		ModifyResponse: func(resp *http.Response) error {
			code = resp.StatusCode
			// The answer already carries the gateway's pair (set above, for
			// error answers too); the proxy adds the function's headers to
			// it, so a function's own copies would make them twice.
			resp.Header.Del("X-Call-Id")
			resp.Header.Del("X-Start-Time")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code = http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				code = http.StatusGatewayTimeout
			}
			rt.log.Error("invoke", "function", name, "err", err.Error(), "code", code)
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			http.Error(w, fmt.Sprintf("function %s: %v", name, err), code)
		},
	}
	rp.ServeHTTP(w, r)
	el := time.Since(start)
	c := strconv.Itoa(code)
	rt.metrics.invocations.WithLabelValues(name, c).Inc()
	rt.metrics.duration.WithLabelValues(name, c).Observe(el.Seconds())
	if lease.Cold {
		rt.metrics.coldStart.WithLabelValues(name).Observe(el.Seconds())
	}
}

// Result is a finished call made with Call.
type Result struct {
	Status   int
	Header   http.Header
	Body     []byte
	Duration time.Duration
}

// Call makes a request to the function from inside the runtime (the async
// worker's path) with the same admission as Invoke. A transport failure is
// reported as status 502 with the error text as body.
func (rt *Runtime) Call(ctx context.Context, name, method, subPath, rawQuery string, header http.Header, body io.Reader) (*Result, error) {
	start := time.Now()
	lease, err := rt.Acquire(name)
	if err != nil {
		return nil, err
	}
	defer lease.Done()
	u := url.URL{Scheme: "http", Host: lease.Addr, Path: "/" + subPath, RawQuery: rawQuery}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", name, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := rt.transport.RoundTrip(req)
	code := http.StatusBadGateway
	res := &Result{Status: code}
	if err != nil {
		res.Body = []byte(err.Error())
	} else {
		defer resp.Body.Close()
		res.Status, res.Header = resp.StatusCode, resp.Header
		if res.Body, err = io.ReadAll(resp.Body); err != nil {
			res.Status, res.Body = http.StatusBadGateway, []byte(err.Error())
		}
	}
	res.Duration = time.Since(start)
	c := strconv.Itoa(res.Status)
	rt.metrics.invocations.WithLabelValues(name, c).Inc()
	rt.metrics.duration.WithLabelValues(name, c).Observe(res.Duration.Seconds())
	return res, nil
}

// StatusOf maps runtime errors to HTTP codes.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrTooMany):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// SplitName takes a function name as callers address it: "name", or
// "name.namespace" as go-sdk and faas-cli invoke it. A namespace other than
// the runtime's one is ErrNotFound.
func SplitName(s string) (string, error) {
	name, ns, ok := strings.Cut(s, ".")
	if ok && ns != Namespace {
		return "", fmt.Errorf("function %s: namespace %q: %w (only %s exists here)", name, ns, ErrNotFound, Namespace)
	}
	return name, nil
}

// A call's body is read before the call takes one of the function's slots
// (max_inflight): a caller that sends its body slowly, or never, would
// otherwise hold a slot for as long as the server waits, and two such
// callers with no credentials keep a function with two slots from the
// router's deliveries. Up to maxBufferedBody is read within bodyTimeout;
// the rest of a larger body streams to the function once admitted.
const (
	maxBufferedBody = 16 << 20
	bodyTimeout     = 30 * time.Second
)

// bufferBody reads r's body (up to maxBufferedBody) into memory within
// bodyTimeout and puts it back as r.Body.
func bufferBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxBufferedBody+1))
	if err != nil {
		return fmt.Errorf("not received within %s: %w", bodyTimeout, err)
	}
	if len(buf) <= maxBufferedBody {
		_ = rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.ContentLength = int64(len(buf))
		return nil
	}
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Minute))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	return nil
}
