package testserver

import (
	"context"
	"fmt"
)

// Restart shuts the server down and starts it again in the same directory on the same port,
// as an origin restart (or a failover to a standby at the same address) looks to its clients:
// every connection to it is closed, and new ones are taken once it is back.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.shutdown(); err != nil {
		return err
	}
	if err := p.startOn(ctx, p.Port); err != nil {
		return fmt.Errorf("%w\n--- tail of %s ---\n%s", err, p.logPath(), p.logTail())
	}
	return nil
}
