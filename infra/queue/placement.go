package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// placeWithin bounds how long a component's start waits for the JetStream cluster to have
// room for its streams' replicas.
const placeWithin = 2 * time.Minute

// Placed runs create (a stream or bucket creation) until it succeeds or
// fails for a reason waiting cannot cure. The nodes of a cluster do not
// start at once: two of three elect a leader (so JetStream answers) while
// the third is still starting, and a replicas-3 stream then has "no
// suitable peers for placement"; Kubernetes starts the router, the
// gateway and the NATS pods in any order. Each try has its own short
// clock, since a request made before there is a leader gets no answer.
func Placed(ctx context.Context, what string, create func(context.Context) error) error {
	deadline := time.Now().Add(placeWithin)
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := create(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if !placementPending(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// placementPending reports whether err means "the cluster is not ready
// yet": too few peers, no meta leader, or no answer.
func placementPending(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10005, // JSClusterNoPeersErrF: no suitable peers for placement
			10008, // JSClusterNotAvailErr: JetStream system temporarily unavailable
			10023: // JSInsufficientResourcesErr
			return true
		}
		return api.Code == 503
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
