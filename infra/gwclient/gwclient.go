// Package gwclient speaks the OpenFaaS gateway REST API the way faas-cli
// does, so segflow's CLI works against the local runtime and a remote
// OpenFaaS gateway alike.
package gwclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// Client calls one gateway.
type Client struct {
	URL      string // http://127.0.0.1:8080
	User     string
	Password string
	HTTP     *http.Client
}

// New returns a client with a sane timeout.
func New(url, user, password string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), User: user, Password: password,
		HTTP: &http.Client{Timeout: 10 * time.Minute}}
}

// Error is a non-2xx answer.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("gateway: %d %s", e.Status, strings.TrimSpace(e.Body))
}

// IsStatus says whether err is a gateway answer with that status.
func IsStatus(err error, status int) bool {
	e, ok := err.(*Error)
	return ok && e.Status == status
}

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

// Deploy updates the function and, when the gateway says it does not exist
// (404), creates it: faas-cli deploy's rolling-update behaviour.
func (c *Client) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	err := c.do(ctx, http.MethodPut, "/system/functions", dep, nil)
	if IsStatus(err, http.StatusNotFound) {
		err = c.do(ctx, http.MethodPost, "/system/functions", dep, nil)
	}
	if err != nil {
		return fmt.Errorf("deploy %s: %w", dep.Service, err)
	}
	return nil
}

// List returns the deployed functions.
func (c *Client) List(ctx context.Context) ([]types.FunctionStatus, error) {
	var out []types.FunctionStatus
	return out, c.do(ctx, http.MethodGet, "/system/functions", nil, &out)
}

// Status describes one function.
func (c *Client) Status(ctx context.Context, name string) (types.FunctionStatus, error) {
	var out types.FunctionStatus
	return out, c.do(ctx, http.MethodGet, "/system/function/"+name, nil, &out)
}

// Scale sets the replica count.
func (c *Client) Scale(ctx context.Context, name string, replicas uint64) error {
	return c.do(ctx, http.MethodPost, "/system/scale-function/"+name,
		types.ScaleServiceRequest{ServiceName: name, Replicas: replicas}, nil)
}

// Remove deletes a function.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/system/functions", types.DeleteFunctionRequest{FunctionName: name}, nil)
}

// PutSecret creates or updates a secret.
func (c *Client) PutSecret(ctx context.Context, name, value string) error {
	s := types.Secret{Name: name, Value: value}
	err := c.do(ctx, http.MethodPost, "/system/secrets", s, nil)
	if IsStatus(err, http.StatusConflict) {
		err = c.do(ctx, http.MethodPut, "/system/secrets", s, nil)
	}
	return err
}

// Invoke calls the function synchronously and returns the answer's body.
func (c *Client) Invoke(ctx context.Context, name string, header http.Header, body io.Reader) (*http.Response, error) {
	return c.call(ctx, "/function/"+name, header, body)
}

// InvokeAsync queues a call; it returns the call id.
func (c *Client) InvokeAsync(ctx context.Context, name, callbackURL string, header http.Header, body io.Reader) (string, error) {
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if callbackURL != "" {
		h.Set("X-Callback-Url", callbackURL)
	}
	resp, err := c.call(ctx, "/async-function/"+name, h, body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return "", &Error{Status: resp.StatusCode, Body: string(b)}
	}
	return resp.Header.Get("X-Call-Id"), nil
}

func (c *Client) call(ctx context.Context, path string, header http.Header, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", path, err)
	}
	return resp, nil
}

// Logs streams a function's log messages (newline-delimited JSON) to fn.
func (c *Client) Logs(ctx context.Context, name string, tail int, follow bool, fn func(msg LogMessage)) error {
	path := fmt.Sprintf("/system/logs?name=%s&tail=%d&follow=%t", name, tail, follow)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+path, nil)
	if err != nil {
		return err
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("logs %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return &Error{Status: resp.StatusCode, Body: string(b)}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m LogMessage
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("logs %s: %w", name, err)
		}
		fn(m)
	}
}

// LogMessage is one line of function output.
type LogMessage struct {
	Name      string    `json:"name"`
	Instance  string    `json:"instance"`
	Timestamp time.Time `json:"timestamp"`
	Text      string    `json:"text"`
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

// Replay queues the dead letter with id again, or all of them when id is "".
func (c *Client) Replay(ctx context.Context, id string) (int, error) {
	var out struct {
		Replayed int `json:"replayed"`
	}
	err := c.do(ctx, http.MethodPost, "/system/deadletters?id="+url.QueryEscape(id), nil, &out)
	return out.Replayed, err
}
