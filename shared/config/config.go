// Package config reads settings the way OpenFaaS hands them to a function:
// plain values from the environment, secrets from files in a mounted folder
// (/var/openfaas/secrets/<name> on OpenFaaS, SEGFLOW_SECRETS_DIR locally).
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultSecretsDir is where OpenFaaS mounts a function's secrets.
const DefaultSecretsDir = "/var/openfaas/secrets"

// SecretsDir is the folder secrets are read from.
func SecretsDir() string {
	if d := os.Getenv("SEGFLOW_SECRETS_DIR"); d != "" {
		return d
	}
	return DefaultSecretsDir
}

// Env returns the environment variable name, or def when it is unset or empty.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// Int returns an integer environment variable, or def when unset.
func Int(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("config %s=%q: %w", name, v, err)
	}
	return n, nil
}

// Float returns a number environment variable in [lo, hi], or def when
// unset; a value out of range (NaN included) is an error.
func Float(name string, def, lo, hi float64) (float64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("config %s=%q: %w", name, v, err)
	}
	if !(f >= lo && f <= hi) {
		return 0, fmt.Errorf("config %s=%q: want a number from %g to %g", name, v, lo, hi)
	}
	return f, nil
}

// Duration returns a duration environment variable ("90s", "15m"); a bare
// number is read as seconds, as OpenFaaS's watchdog timeouts are.
func Duration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	return ParseDuration(v)
}

// ParseDuration parses "90s"/"15m" or a bare number of seconds.
func ParseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", v, err)
	}
	return d, nil
}

// Secret reads a secret by name. The file in SecretsDir wins; otherwise the
// environment variable of the same name upper-cased with '-' as '_' is used,
// which suits local shells. A missing secret is an error that names it but
// never its value.
func Secret(name string) (string, error) {
	if strings.ContainsAny(name, `/\`) || name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("secret %q: invalid name", name)
	}
	b, err := os.ReadFile(filepath.Join(SecretsDir(), name))
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	envName := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if v := os.Getenv(envName); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("secret %q: not in %s nor $%s: %w", name, SecretsDir(), envName, err)
}

// SecretOr returns the secret or def when it is not set anywhere.
func SecretOr(name, def string) string {
	v, err := Secret(name)
	if err != nil {
		return def
	}
	return v
}
