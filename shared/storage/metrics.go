package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ServerMetrics reads MinIO's cluster metrics (Prometheus text format,
// /minio/v2/metrics/cluster): what the server counts of itself, such as
// the bucket notifications it skipped or failed to send. MinIO takes the
// bearer token `mc admin prometheus generate` makes: a JWT naming the
// access key, signed with its secret key (HS512). MinIO computes these
// figures at most every 10 s, so a reading may be that old.
func (c *Client) ServerMetrics(ctx context.Context) ([]byte, error) {
	token, err := metricsToken(c.o.AccessKey, c.o.SecretKey, time.Now().Add(time.Minute))
	if err != nil {
		return nil, err
	}
	u := *c.mc.EndpointURL()
	u.Path = "/minio/v2/metrics/cluster"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("storage metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("storage metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("storage metrics: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// metricsToken is the JWT MinIO's metrics endpoints accept.
func metricsToken(accessKey, secretKey string, exp time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{"exp": exp.Unix(), "sub": accessKey, "iss": "prometheus"})
	if err != nil {
		return "", err
	}
	signed := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha512.New, []byte(secretKey))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil)), nil
}
