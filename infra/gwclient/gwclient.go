// Package gwclient is segflow's client of an OpenFaaS gateway: go-sdk's
// client, the one faas-cli itself calls, for functions, secrets, scaling,
// logs and invocations, plus the gateway routes only segflow has (dead
// letters). It speaks to the local runtime and to OpenFaaS alike.
package gwclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/segflow/segflow/infra/relay/pull"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"
	sdk "github.com/openfaas/go-sdk"
)

// Client calls one gateway. The embedded go-sdk client serves the OpenFaaS
// API (GetFunctions, GetFunction, ScaleFunction, DeleteFunction,
// GetSecrets, GetInfo, ...); the methods below add faas-cli's compound
// steps and segflow's own routes.
type Client struct {
	*sdk.Client
	URL      string // http://127.0.0.1:8080
	User     string
	Password string
	HTTP     *http.Client
}

// New returns a client with a sane timeout; user "" sends no credentials.
func New(gatewayURL, user, password string) *Client {
	gatewayURL = strings.TrimRight(gatewayURL, "/")
	u, err := url.Parse(gatewayURL)
	if err != nil {
		// A URL that does not parse fails on the first call instead.
		u = &url.URL{Scheme: "http", Host: "invalid-gateway-url"}
	}
	hc := &http.Client{Timeout: 10 * time.Minute}
	var auth sdk.ClientAuth
	if user != "" {
		auth = &sdk.BasicAuth{Username: user, Password: password}
	}
	return &Client{Client: sdk.NewClient(u, auth, hc), URL: gatewayURL, User: user, Password: password, HTTP: hc}
}

// Error is a non-2xx answer from one of segflow's own routes.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("gateway: %d %s", e.Status, strings.TrimSpace(e.Body))
}

// Deploy updates the function and, when the gateway says it does not exist
// (404), creates it: faas-cli deploy's rolling update.
func (c *Client) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	code, err := c.Update(ctx, dep)
	if code == http.StatusNotFound {
		_, err = c.Client.Deploy(ctx, dep)
	}
	if err != nil {
		return fmt.Errorf("deploy %s: %w", dep.Service, err)
	}
	return nil
}

// List returns the functions of the default namespace.
func (c *Client) List(ctx context.Context) ([]types.FunctionStatus, error) {
	return c.GetFunctions(ctx, sdk.DefaultNamespace)
}

// PutSecret creates a secret or, when it exists (409), updates it.
func (c *Client) PutSecret(ctx context.Context, name, value string) error {
	s := types.Secret{Name: name, Value: value, Namespace: sdk.DefaultNamespace}
	code, err := c.CreateSecret(ctx, s)
	if code == http.StatusConflict {
		_, err = c.UpdateSecret(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return nil
}

// Invoke calls the function synchronously at /function/NAME.NAMESPACE, as
// faas-cli invoke does.
func (c *Client) Invoke(ctx context.Context, name string, header http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.InvokeFunction(name, sdk.DefaultNamespace, false, false, req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	return resp, nil
}

// InvokeAsync queues a call at /async-function/NAME.NAMESPACE; it returns
// the call id.
func (c *Client) InvokeAsync(ctx context.Context, name, callbackURL string, header http.Header, body io.Reader) (string, error) {
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if callbackURL != "" {
		h.Set("X-Callback-Url", callbackURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, body)
	if err != nil {
		return "", err
	}
	req.Header = h
	resp, err := c.InvokeFunction(name, sdk.DefaultNamespace, true, false, req)
	if err != nil {
		return "", fmt.Errorf("invoke %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return "", &Error{Status: resp.StatusCode, Body: string(b)}
	}
	return resp.Header.Get("X-Call-Id"), nil
}

// Logs streams a function's log messages to fn until the stream ends.
func (c *Client) Logs(ctx context.Context, name string, tail int, follow bool, fn func(msg logs.Message)) error {
	ch, err := c.GetLogs(ctx, name, sdk.DefaultNamespace, follow, tail, nil)
	if err != nil {
		return fmt.Errorf("logs %s: %w", name, err)
	}
	for m := range ch {
		fn(m)
	}
	return nil
}

// DeadLetter is one entry of /system/deadletters: an event that exhausted
// its attempts, with the last error. The router keeps them; this is their
// wire shape, shared by both sides.
type DeadLetter struct {
	Seq      uint64          `json:"seq"`
	ID       string          `json:"id"`
	Function string          `json:"function"`
	Subject  string          `json:"subject"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	At       time.Time       `json:"at"`
	Event    json.RawMessage `json:"event"`
	Object   string          `json:"object,omitempty"`
}

// DeadLetters lists the router's dead letters.
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	return out, c.do(ctx, http.MethodGet, "/system/deadletters", nil, &out)
}

// Pulls is the state of every stream the relay pulls.
func (c *Client) Pulls(ctx context.Context) ([]pull.Status, error) {
	var out []pull.Status
	return out, c.do(ctx, http.MethodGet, "/api/pulls", nil, &out)
}

// Replay queues the dead letter with id again, or all of them when id is "".
func (c *Client) Replay(ctx context.Context, id string) (int, error) {
	var out struct {
		Replayed int `json:"replayed"`
	}
	err := c.do(ctx, http.MethodPost, "/system/deadletters?id="+url.QueryEscape(id), nil, &out)
	return out.Replayed, err
}

// Playback is an asset's master playlist URL for players, and for a
// private asset when that URL stops working.
type Playback struct {
	URL     string     `json:"url"`
	Expires *time.Time `json:"expires,omitempty"`
	// License is a cbcs asset's EME Clear Key license URL.
	License string `json:"license,omitempty"`
}

// PlaybackURL asks the gateway for the asset's playback URL; ttl 0 takes
// the gateway's default.
func (c *Client) PlaybackURL(ctx context.Context, id string, ttl time.Duration) (Playback, error) {
	p := "/api/play/" + url.PathEscape(id)
	if ttl > 0 {
		p += "?ttl=" + url.QueryEscape(ttl.String())
	}
	var out Playback
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// do calls one of segflow's own routes with basic auth and JSON.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("gateway %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &Error{Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("gateway %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
