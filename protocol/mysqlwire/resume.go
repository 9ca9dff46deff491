package mysqlwire

import "net"

// Salt returns the connection's handshake salt, which the client's COM_CHANGE_USER scrambles
// its password with. It is a nonce the handshake sent in clear, not a secret: a connection
// handed to another process takes it along (Resume).
func (c *Conn) Salt() []byte { return c.salt[:] }

// Resume returns the Conn of a client connection whose connection phase ended elsewhere (in
// the process that handed it over), for the command phase: r reads nc from a packet
// boundary; resp, caps and ext are what the client negotiated then, salt the handshake's
// (Salt). A TLS connection cannot be resumed: its keys stayed where the handshake ran.
func Resume(nc net.Conn, r *Reader, resp Response, caps, ext uint32, salt []byte) *Conn {
	c := &Conn{Net: nc, Reader: r, Response: resp, Capabilities: caps, ExtCapabilities: ext}
	copy(c.salt[:], salt)
	return c
}
