// Package s3iam gives each component its own MinIO user whose policy
// allows exactly the bucket prefixes it reads and writes, so no function
// holds the root credentials.
//
// MinIO's admin API is small HTTP with SigV4; segflow speaks the three
// calls it needs itself rather than import madmin-go, which is AGPL.
package s3iam

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/secure-io/sio-go"
)

// Admin calls MinIO's admin API with the root credentials.
type Admin struct {
	endpoint  string // http://host:port
	accessKey string
	secretKey string
	client    *http.Client
}

// NewAdmin returns a client for the MinIO server at endpoint (host:port,
// or a URL with its scheme).
func NewAdmin(endpoint, accessKey, secretKey string) *Admin {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	return &Admin{endpoint: strings.TrimSuffix(endpoint, "/"), accessKey: accessKey, secretKey: secretKey,
		client: &http.Client{Timeout: 30 * time.Second}}
}

// AddUser creates the user, or sets its secret when it exists, enabled.
// The body is encrypted with the caller's secret key, as MinIO requires
// for anything that carries a credential.
func (a *Admin) AddUser(ctx context.Context, accessKey, secretKey string) error {
	body, err := json.Marshal(struct {
		SecretKey string `json:"secretKey"`
		Status    string `json:"status"`
	}{secretKey, "enabled"})
	if err != nil {
		return err
	}
	sealed, err := encrypt(a.secretKey, body)
	if err != nil {
		return fmt.Errorf("add user %s: %w", accessKey, err)
	}
	if err := a.do(ctx, http.MethodPut, "add-user", url.Values{"accessKey": {accessKey}}, sealed); err != nil {
		return fmt.Errorf("add user %s: %w", accessKey, err)
	}
	return nil
}

// PutPolicy creates or replaces the canned policy name.
func (a *Admin) PutPolicy(ctx context.Context, name string, policy []byte) error {
	if err := a.do(ctx, http.MethodPut, "add-canned-policy", url.Values{"name": {name}}, policy); err != nil {
		return fmt.Errorf("policy %s: %w", name, err)
	}
	return nil
}

// SetUserPolicy makes policy the user's only policy.
func (a *Admin) SetUserPolicy(ctx context.Context, policy, user string) error {
	q := url.Values{"policyName": {policy}, "userOrGroup": {user}, "isGroup": {"false"}}
	if err := a.do(ctx, http.MethodPut, "set-user-or-group-policy", q, nil); err != nil {
		return fmt.Errorf("attach policy %s to %s: %w", policy, user, err)
	}
	return nil
}

// RemoveUser deletes the user; a user that does not exist is no error.
func (a *Admin) RemoveUser(ctx context.Context, accessKey string) error {
	err := a.do(ctx, http.MethodDelete, "remove-user", url.Values{"accessKey": {accessKey}}, nil)
	if err != nil && !strings.Contains(err.Error(), "XMinioAdminNoSuchUser") {
		return fmt.Errorf("remove user %s: %w", accessKey, err)
	}
	return nil
}

func (a *Admin) do(ctx context.Context, method, call string, q url.Values, body []byte) error {
	u := a.endpoint + "/minio/admin/v3/" + call + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, a.accessKey, a.secretKey, "", "us-east-1")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e struct{ Code, Message string }
	if json.Unmarshal(msg, &e) == nil && e.Code != "" {
		return fmt.Errorf("%s: %s: %s", resp.Status, e.Code, e.Message)
	}
	return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
}

// encrypt seals data the way MinIO's admin API reads it:
// salt(32) | algorithm id | nonce(8) | sio stream. Of the algorithms the
// server takes, PBKDF2 + AES-GCM (id 2) is the one whose key derivation
// does not need 64 MiB of memory per call.
func encrypt(password string, data []byte) ([]byte, error) {
	const pbkdf2AESGCM = 0x02
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, 8192, 32)
	if err != nil {
		return nil, err
	}
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, stream.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(salt)
	out.WriteByte(pbkdf2AESGCM)
	out.Write(nonce)
	w := stream.EncryptWriter(&out, nonce, nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
