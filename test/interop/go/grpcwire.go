package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// frame is one gRPC length-prefixed message: a compressed flag (0), a 4-byte big-endian length,
// then the message (JSON here, as the test echo service speaks).
func frame(msg []byte) []byte {
	out := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:5], uint32(len(msg)))
	copy(out[5:], msg)
	return out
}

// unframe splits a gRPC body into its messages.
func unframe(body []byte) ([][]byte, error) {
	var msgs [][]byte
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, errors.New("truncated gRPC message header")
		}
		if body[0] != 0 {
			return nil, fmt.Errorf("compressed gRPC message (flag %d) not supported", body[0])
		}
		n := binary.BigEndian.Uint32(body[1:5])
		if uint32(len(body)-5) < n {
			return nil, errors.New("truncated gRPC message")
		}
		msgs = append(msgs, body[5:5+n])
		body = body[5+n:]
	}
	return msgs, nil
}
