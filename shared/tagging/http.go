package tagging

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// HTTP asks a model served over HTTP (a GPU service, say) for tags: it
// POSTs the segment (video/mp2t) and reads back a JSON list of tags.
type HTTP struct {
	URL    string
	Client *http.Client
}

// Name implements Tagger.
func (HTTP) Name() string { return "http" }

// Tag implements Tagger.
func (h HTTP) Tag(ctx context.Context, in Input) ([]Tag, error) {
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, errorf("http", "%v", err)
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, f)
	if err != nil {
		return nil, errorf("http", "%v", err)
	}
	req.Header.Set("Content-Type", "video/mp2t")
	req.Header.Set("X-Segment-Duration", strconv.FormatFloat(in.Duration, 'f', 3, 64))
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, errorf("http", "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, errorf("http", "%s answered %d: %s", h.URL, resp.StatusCode, b)
	}
	var tags []Tag
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&tags); err != nil {
		return nil, fmt.Errorf("http: %s: %w", h.URL, err)
	}
	return tags, nil
}
