package queue

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeepInProgress tells JetStream every interval that msg is still being
// worked on, so that it is not handed out again once its AckWait passes,
// until the returned stop is called. A holder that dies stops telling, and
// the message goes to another worker after AckWait.
func KeepInProgress(msg jetstream.Msg, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
