//go:build !linux

package media

// DisableHugePages does nothing where there are no transparent huge pages
// to turn off (see the Linux version).
func DisableHugePages() (restore func() error, err error) {
	return func() error { return nil }, nil
}
