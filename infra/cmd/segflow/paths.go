package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/segflow/segflow/infra/envfile"
	"github.com/segflow/segflow/infra/gwclient"
)

// repoRoot finds the repository: --repo, $SEGFLOW_REPO, or the nearest
// folder upwards that holds go.work and stack.yml.
func repoRoot(cmd *cobra.Command) (string, error) {
	if r, _ := cmd.Flags().GetString("repo"); r != "" {
		return filepath.Abs(r)
	}
	if r := os.Getenv("SEGFLOW_REPO"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.work")) && fileExists(filepath.Join(dir, "stack.yml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the segflow repository (no go.work + stack.yml above here); use --repo")
		}
		dir = parent
	}
}

// homeDir is --home, $SEGFLOW_HOME, or <repo>/.segflow.
func homeDir(cmd *cobra.Command) (string, error) {
	if h, _ := cmd.Flags().GetString("home"); h != "" {
		return filepath.Abs(h)
	}
	if h := os.Getenv("SEGFLOW_HOME"); h != "" {
		return filepath.Abs(h)
	}
	repo, err := repoRoot(cmd)
	if err != nil {
		return "", err
	}
	return filepath.Join(repo, ".segflow"), nil
}

// dirs returns the state folder and the repository root.
func dirs(cmd *cobra.Command) (home, repo string, err error) {
	if home, err = homeDir(cmd); err != nil {
		return "", "", err
	}
	repo, err = repoRoot(cmd)
	return home, repo, err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// credential returns the value in file p, creating a random one first.
func credential(p, fixed string) (string, error) {
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	v := fixed
	if v == "" {
		var err error
		if v, err = newSecret(); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// client builds a gateway client: --gateway or $OPENFAAS_URL, else the
// local stack's env file; credentials from $SEGFLOW_GATEWAY_USER/PASSWORD
// or that file.
func client(cmd *cobra.Command) (*gwclient.Client, error) {
	env := envfile.FromEnviron()
	url, _ := cmd.Flags().GetString("gateway")
	if url == "" {
		url = env.Gateway
	}
	user, pass := env.GatewayUser, env.GatewayPassword
	if url == "" || user == "" {
		if home, err := homeDir(cmd); err == nil {
			if file, err := envfile.Read(filepath.Join(home, "env")); err == nil {
				if url == "" {
					url = file.Gateway
				}
				if user == "" {
					user, pass = file.GatewayUser, file.GatewayPassword
				}
			}
		}
	}
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	return gwclient.New(url, user, pass), nil
}
