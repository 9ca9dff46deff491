package cli

import (
	"net"
	"testing"
	"time"
)

// TestListenTCPHandsNewConnectionsToTheNewestListener is the SO_REUSEPORT upgrade in one
// process: a second listener on the same address takes every new connection, and once the
// first closes, the second keeps taking them.
func TestListenTCPHandsNewConnectionsToTheNewestListener(t *testing.T) {
	old, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	addr := old.Addr().String()
	if got := acceptOne(t, old, addr); !got {
		t.Fatal("the only listener did not get the connection")
	}
	newer, err := listenTCP(addr)
	if err != nil {
		t.Fatalf("a second listener on %s: %v", addr, err)
	}
	defer newer.Close()
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !acceptOne(t, newer, "") {
			t.Fatal("a connection went to the old listener after the new one started")
		}
	}
	old.Close()
	if !acceptOne(t, newer, addr) {
		t.Fatal("the new listener did not get a connection after the old one closed")
	}
}

// acceptOne dials addr (unless empty) and reports whether ln accepts a connection.
func acceptOne(t *testing.T, ln net.Listener, addr string) bool {
	t.Helper()
	if addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return false
	}
	c.Close()
	return true
}
