package pool

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// loginRole opens an origin connection as role, which Slipstream holds no password of: it
// answers the origin's SCRAM challenge with the ClientKey recovered from the role's client at
// the edge (PgBouncer's SCRAM pass-through), an md5 challenge with the md5 verifier, and a
// cleartext one with a plaintext verifier. pgconn cannot log in without the password, so the
// startup is run here, on the connection the origin URL describes (host, port, database, TLS,
// runtime parameters); what it returns is what dial returns for a pgconn connection.
//
// Its errors are the origin's own (*pgconn.PgError, which classifyConnect reads), the
// network's, or one of its own that names no secret.
func loginRole(ctx context.Context, cc *pgconn.Config, role string, v pgwire.Verifier, clientKey []byte) (*Conn, map[string]string, error) {
	network, address := pgconn.NetworkAddress(cc.Host, cc.Port)
	dialer := cc.DialFunc
	if dialer == nil {
		dialer = (&net.Dialer{}).DialContext
	}
	nc, err := dialer(ctx, network, address)
	if err != nil {
		return nil, nil, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	nc.SetDeadline(deadline)
	c, params, err := startRole(nc, cc, role, v, clientKey)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	c.nc.SetDeadline(time.Time{})
	c.network, c.address, c.dialer = network, address, cc.DialFunc
	return c, params, nil
}

// startRole negotiates TLS as cc asks and runs the startup and authentication on nc.
func startRole(nc net.Conn, cc *pgconn.Config, role string, v pgwire.Verifier, clientKey []byte) (*Conn, map[string]string, error) {
	if cc.TLSConfig != nil {
		tc, err := startTLS(nc, cc)
		if err != nil {
			return nil, nil, err
		}
		nc = tc
	}
	msg := []byte{0, 0, 0, 0, 0, 3, 0, 0} // length, then protocol 3.0
	msg = append(append(append(append(msg, "user"...), 0), role...), 0)
	msg = append(append(append(append(msg, "database"...), 0), cc.Database...), 0)
	for k, val := range cc.RuntimeParams {
		msg = append(append(append(append(msg, k...), 0), val...), 0)
	}
	msg = append(msg, 0)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	if _, err := nc.Write(msg); err != nil {
		return nil, nil, err
	}
	r := pgwire.NewReader(nc, maxOriginMessage)
	params := make(map[string]string)
	c := &Conn{nc: nc, r: r, created: time.Now(), prepared: make(map[string]struct{})}
	var scram *pgwire.SCRAMClient
	for {
		typ, body, err := r.ReadMessage()
		if err != nil {
			return nil, nil, err
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return nil, nil, errors.New("pool: malformed authentication request from the origin")
			}
			if scram, err = answerAuth(nc, role, v, clientKey, binary.BigEndian.Uint32(body), body[4:], scram); err != nil {
				return nil, nil, err
			}
		case 'E':
			return nil, nil, &pgconn.PgError{Severity: string(errorField(body, 'S')), Code: string(errorField(body, 'C')),
				Message: string(errorField(body, 'M')), Detail: string(errorField(body, 'D'))}
		case 'S':
			k, rest, _ := pgwire.CutCString(body)
			val, _, _ := pgwire.CutCString(rest)
			params[k] = val
		case 'K':
			if len(body) >= 8 {
				c.pid, c.secret = binary.BigEndian.Uint32(body), append([]byte(nil), body[4:]...)
			}
		case 'Z':
			c.nc, c.peer = nc, NewPeer(nc)
			return c, params, nil
		}
	}
}

// startTLS sends an SSLRequest and upgrades nc when the origin agrees; an origin that refuses
// is used in plaintext only when cc allows it (sslmode=prefer or allow).
func startTLS(nc net.Conn, cc *pgconn.Config) (net.Conn, error) {
	if _, err := nc.Write([]byte{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f}); err != nil {
		return nil, err
	}
	var b [1]byte
	if _, err := nc.Read(b[:]); err != nil {
		return nil, err
	}
	if b[0] == 'S' {
		tc := tls.Client(nc, cc.TLSConfig)
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		return tc, nil
	}
	for _, fb := range cc.Fallbacks {
		if fb.TLSConfig == nil {
			return nc, nil
		}
	}
	return nil, errors.New("pool: the origin refused TLS, which the origin URL requires")
}

// answerAuth answers one authentication request of the origin (code, data) for role.
func answerAuth(nc net.Conn, role string, v pgwire.Verifier, clientKey []byte, code uint32, data []byte, scram *pgwire.SCRAMClient) (*pgwire.SCRAMClient, error) {
	send := func(body []byte) error {
		_, err := nc.Write(pgwire.AppendFrame(nil, 'p', body))
		return err
	}
	switch code {
	case 0: // AuthenticationOk
		return scram, nil
	case 3: // cleartext
		if pw := v.Password(); pw != "" {
			return nil, send(append([]byte(pw), 0))
		}
		return nil, errors.New("pool: the origin asks for the role's cleartext password, which only a plaintext verifier gives")
	case 5: // md5
		hash := v.MD5Hash(role)
		if hash == "" || len(data) < 4 {
			return nil, errors.New("pool: the origin asks for an md5 login, which a SCRAM verifier cannot give")
		}
		return nil, send(append(pgwire.MD5SaltedHash(hash, [4]byte(data[:4])), 0))
	case 10: // SASL
		c, err := pgwire.NewSCRAMClient(v, clientKey)
		if err != nil {
			return nil, err
		}
		return c, send(c.AppendInitialResponse(nil))
	case 11, 12: // SASL continue, final
		if scram == nil {
			return nil, errors.New("pool: SCRAM message from the origin out of order")
		}
		if code == 12 {
			return scram, scram.Verify(string(data))
		}
		final, err := scram.Final(string(data))
		if err != nil {
			return nil, err
		}
		return scram, send([]byte(final))
	}
	return nil, fmt.Errorf("pool: the origin asks for authentication method %d, which a role login cannot answer", code)
}
