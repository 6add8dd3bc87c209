package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// IsUnavailable says whether err is the storage out of reach or refusing
// for now — a refused, cut or timed-out connection, 503, SlowDown, a pool
// short of its quorum — rather than anything about the request: the same
// call may pass once the storage is back. A stage answers such a failure
// 503, which the router waits out without spending one of the event's
// attempts (a minute of MinIO outage dead-lettered the deliveries it
// met). A context that ended is the caller's own, not the storage's.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		// MinIO: SlowDownRead/SlowDownWrite for a pool short of its
		// quorum, XMinioServerNotInitialized while it starts; all 503.
		return resp.StatusCode == http.StatusServiceUnavailable || strings.HasPrefix(resp.Code, "SlowDown") ||
			resp.Code == "XMinioServerNotInitialized"
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
