package provider

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// secretStore keeps secrets as 0600 files, one per name, and mounts the ones
// a function lists into that function's own folder, as OpenFaaS mounts them
// at /var/openfaas/secrets.
type secretStore struct {
	dir string
}

var (
	errSecretExists   = errors.New("secret already exists")
	errSecretNotFound = errors.New("secret not found")
	secretName        = regexp.MustCompile(`^[a-zA-Z0-9][-._a-zA-Z0-9]{0,252}$`)
)

func newSecretStore(dir string) (*secretStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets dir: %w", err)
	}
	return &secretStore{dir: dir}, nil
}

func validSecretName(name string) error {
	if !secretName.MatchString(name) {
		return fmt.Errorf("invalid secret name %q", name)
	}
	return nil
}

// List returns the secret names, sorted.
func (s *secretStore) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Put writes a secret; create=true refuses to overwrite, create=false
// refuses to create.
func (s *secretStore) Put(name string, value []byte, create bool) error {
	if err := validSecretName(name); err != nil {
		return err
	}
	p := filepath.Join(s.dir, name)
	_, err := os.Stat(p)
	switch {
	case create && err == nil:
		return fmt.Errorf("secret %s: %w", name, errSecretExists)
	case !create && os.IsNotExist(err):
		return fmt.Errorf("secret %s: %w", name, errSecretNotFound)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, value, 0o600); err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return os.Rename(tmp, p)
}

// Delete removes a secret.
func (s *secretStore) Delete(name string) error {
	if err := validSecretName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("secret %s: %w", name, errSecretNotFound)
		}
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return nil
}

// Mount copies the named secrets into dir (replacing what was there) so the
// function reads them as files. A missing secret fails the deploy, as on
// OpenFaaS.
func (s *secretStore) Mount(dir string, names []string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("mount secrets: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mount secrets: %w", err)
	}
	for _, n := range names {
		if err := validSecretName(n); err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(s.dir, n))
		if err != nil {
			return fmt.Errorf("secret %s: %w", n, errSecretNotFound)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			return fmt.Errorf("mount secret %s: %w", n, err)
		}
	}
	return nil
}
