package testserver

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Main starts a server with start, stores it in *srv, runs the package's tests and stops the
// server. It returns the exit code for os.Exit. A server that fails to start fails the package
// (it does not skip): CI must not pass without having run the integration tests.
func Main[S interface{ Stop() error }](m *testing.M, srv *S, start func(context.Context) (S, error)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
