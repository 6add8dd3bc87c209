package watchdog

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/segflow/segflow/shared/config"
)

// MountSecrets makes the function's secrets readable where OpenFaaS mounts
// them (/var/openfaas/secrets/<name>), so an fprocess such as
// "cat /var/openfaas/secrets/api-key" works as it does in a container. It
// bind-mounts dir there only inside a mount namespace of this process's own
// (the runtime starts watchdog replicas with one when it runs as root);
// in the parent's namespace it does nothing and says so, since a mount
// there would be seen by every process on the machine.
func MountSecrets(dir string) error {
	own, err := ownMountNamespace()
	if err != nil {
		return err
	}
	if !own {
		return fmt.Errorf("secrets stay at %s: no private mount namespace (the runtime makes one only as root)", dir)
	}
	if err := os.MkdirAll(config.DefaultSecretsDir, 0o755); err != nil {
		return fmt.Errorf("secrets mount point: %w", err)
	}
	if err := syscall.Mount(dir, config.DefaultSecretsDir, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", dir, config.DefaultSecretsDir, err)
	}
	return nil
}

// ownMountNamespace says whether this process's mount namespace differs
// from its parent's.
func ownMountNamespace() (bool, error) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, fmt.Errorf("mount namespace: %w", err)
	}
	parent, err := os.Readlink("/proc/" + strconv.Itoa(os.Getppid()) + "/ns/mnt")
	if err != nil {
		return false, fmt.Errorf("parent's mount namespace: %w", err)
	}
	return self != parent, nil
}
