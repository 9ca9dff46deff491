package mysqlwire

// Commands that draw no answer.
const (
	comQuit      = 0x01
	comLongData  = 0x18
	comStmtClose = 0x19
)

// DrawsAnswers reports whether packets, back to back (4-byte header: length, sequence id),
// draw an answer from the server, and whether they hold COM_QUIT. A command packet (sequence
// id 0) draws one unless it is COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA or COM_QUIT; a packet
// further in an exchange (a LOAD DATA LOCAL file's last, empty packet; an authentication
// answer) draws one when it ends a packet sequence.
func DrawsAnswers(packets []byte) (draws, quit bool) {
	for i := 0; i+HeaderLen <= len(packets); {
		n := int(packets[i]) | int(packets[i+1])<<8 | int(packets[i+2])<<16
		seq := packets[i+3]
		if seq == 0 && n > 0 && i+HeaderLen < len(packets) {
			switch packets[i+HeaderLen] {
			case comQuit:
				quit = true
			case comLongData, comStmtClose:
			default:
				draws = true
			}
		} else if seq != 0 && n < MaxPayload {
			draws = true
		}
		i += HeaderLen + n
	}
	return draws, quit
}
