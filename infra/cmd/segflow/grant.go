package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/gwclient"
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/infra/stack"
	"github.com/segflow/segflow/shared/storage"
)

// grantCmd gives the functions of a stack file their MinIO users on a
// MinIO and an OpenFaaS gateway that `segflow up` does not run: what
// `segflow up` does on every start.
func grantCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Give each function of a stack file its own MinIO user and put its keys into the gateway's secrets",
		Long: "Reads com.segflow.s3.read/write of every function in the stack file and, with MinIO's root keys\n" +
			"($S3_ENDPOINT, $S3_ACCESS_KEY, $S3_SECRET_KEY, $S3_BUCKET), makes a user per function with exactly\n" +
			"those rights and a new secret; the keys go to the gateway ($OPENFAAS_URL) as <function>-s3-access-key\n" +
			"and <function>-s3-secret-key. Run again to rotate, then redeploy so the functions read the new keys.",
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := stack.Parse(file)
			if err != nil {
				return err
			}
			o, bucket, err := storageOptions(cmd)
			if err != nil {
				return err
			}
			gw, err := client(cmd)
			if err != nil {
				return err
			}
			return grantFunctions(cmd.Context(), adminFor(o), []*gwclient.Client{gw}, st, bucket, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "stack.yml", "stack file")
	return cmd
}

func adminFor(o storage.Options) *s3iam.Admin {
	endpoint := o.Endpoint
	if o.Secure {
		endpoint = "https://" + endpoint
	}
	return s3iam.NewAdmin(endpoint, o.AccessKey, o.SecretKey)
}

// grantFunctions gives every function of st that declares a storage grant
// a MinIO user of its own with a fresh secret and puts the keys into each
// gateway's secrets under the names the function reads. Gateways that
// keep secrets each in their own store (segflow's runtime nodes) get the
// same keys in one go: granting them one at a time would rotate the
// secret under the functions already deployed on the others.
func grantFunctions(ctx context.Context, admin *s3iam.Admin, gws []*gwclient.Client, st *stack.Stack, bucket string, out io.Writer) error {
	grants, err := st.Grants()
	if err != nil {
		return err
	}
	for _, name := range st.Names() {
		g, ok := grants[name]
		if !ok {
			continue
		}
		user := "segflow-fn-" + name
		secret, err := newSecret()
		if err != nil {
			return err
		}
		if err := admin.Provision(ctx, bucket, user, secret, g); err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		ak, sk := storage.SecretNames(name)
		for _, gw := range gws {
			for n, v := range map[string]string{ak: user, sk: secret} {
				if err := gw.PutSecret(ctx, n, v); err != nil {
					return fmt.Errorf("function %s: secret %s on %s: %w", name, n, gw.URL, err)
				}
			}
		}
		if out != nil {
			fmt.Fprintf(out, "%s: MinIO user %s reads %v, writes %v\n", name, user, g.Read, g.Write)
		}
	}
	return nil
}

// scopedClient makes user a MinIO user with grant g and a fresh secret and
// returns a client signed in as it: for the parts of `segflow up` that
// need less than the root keys.
func scopedClient(ctx context.Context, admin *s3iam.Admin, o storage.Options, bucket, user string, g s3iam.Grant) (*storage.Client, error) {
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	if err := admin.Provision(ctx, bucket, user, secret, g); err != nil {
		return nil, err
	}
	o.AccessKey, o.SecretKey = user, secret
	return storage.New(o)
}

func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
