package s3iam

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Annotations in stack.yml that say which keys of the bucket a function
// reads and writes: comma-separated patterns where * matches any run of
// characters, '/' included (IAM resource matching).
const (
	ReadAnnotation  = "com.segflow.s3.read"
	WriteAnnotation = "com.segflow.s3.write"
)

// Grant is what one user may do in one bucket.
type Grant struct {
	Read  []string // key patterns it may get (and list under)
	Write []string // key patterns it may put
}

// GrantFromAnnotations reads a function's grant; ok is false when the
// function declares no storage rights at all.
func GrantFromAnnotations(a map[string]string) (g Grant, ok bool) {
	split := func(s string) []string {
		var out []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	g = Grant{Read: split(a[ReadAnnotation]), Write: split(a[WriteAnnotation])}
	return g, len(g.Read)+len(g.Write) > 0
}

// Validate refuses patterns that would reach outside the bucket or that
// IAM would read differently from what they look like.
func (g Grant) Validate() error {
	for _, p := range append(append([]string(nil), g.Read...), g.Write...) {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.ContainsAny(p, "?$\"\\ ") {
			return fmt.Errorf("s3 grant pattern %q: must be a key pattern inside the bucket", p)
		}
	}
	return nil
}

type statement struct {
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// Policy is the IAM policy document for g in bucket. Reading a key
// includes stat and listing under it (with an s3:prefix condition);
// writing includes the multipart calls a large put makes.
func Policy(bucket string, g Grant) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	objects := func(patterns []string) []string {
		out := make([]string, len(patterns))
		for i, p := range patterns {
			out[i] = "arn:aws:s3:::" + bucket + "/" + p
		}
		return out
	}
	bucketARN := "arn:aws:s3:::" + bucket
	st := []statement{{Effect: "Allow", Action: []string{"s3:GetBucketLocation"}, Resource: []string{bucketARN}}}
	if len(g.Read) > 0 {
		st = append(st,
			statement{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: objects(g.Read)},
			statement{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucketARN},
				Condition: map[string]map[string]any{"StringLike": {"s3:prefix": g.Read}}})
	}
	if len(g.Write) > 0 {
		st = append(st, statement{Effect: "Allow",
			Action:   []string{"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
			Resource: objects(g.Write)})
	}
	return json.MarshalIndent(struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{"2012-10-17", st}, "", "  ")
}

// Provision makes user a MinIO user with secret as its secret key and
// g on bucket as its one policy (named after the user). It is idempotent:
// run again, it sets the same secret and replaces the policy, which is
// how a grant is changed and a secret rotated.
func (a *Admin) Provision(ctx context.Context, bucket, user, secret string, g Grant) error {
	doc, err := Policy(bucket, g)
	if err != nil {
		return fmt.Errorf("user %s: %w", user, err)
	}
	if err := a.PutPolicy(ctx, user, doc); err != nil {
		return err
	}
	if err := a.AddUser(ctx, user, secret); err != nil {
		return err
	}
	return a.SetUserPolicy(ctx, user, user)
}
