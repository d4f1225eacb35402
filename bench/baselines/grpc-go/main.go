// The grpc-go baseline of bench/getuser.sh: a bare grpc-go server whose GetUser answers a fixed
// user from memory (as the bare tonic one does), with grpc-go's defaults and nothing else.
//
// Built in GOPATH mode against Debian's golang-google-grpc-dev, with no protoc and no module
// proxy: the messages are read and written with a pass-through codec and a few lines of protobuf
// wire encoding, which costs grpc-go less than generated code would (a baseline no slower than
// the real thing).
//
// Usage: grpc-go-users [ADDR] (default 127.0.0.1:0); prints "listening ADDR" once it accepts calls.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// rawCodec hands message bytes through unchanged, registered under grpc-go's default name.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendField appends a length-delimited field (strings and messages).
func appendField(b []byte, number uint64, value []byte) []byte {
	b = appendVarint(b, number<<3|2)
	b = appendVarint(b, uint64(len(value)))
	return append(b, value...)
}

// requestID reads field 1 (the id) of a GetUserRequest.
func requestID(in []byte) []byte {
	for len(in) > 0 {
		key, n := readVarint(in)
		in = in[n:]
		switch key & 7 {
		case 0:
			_, n = readVarint(in)
			in = in[n:]
		case 2:
			length, n := readVarint(in)
			in = in[n:]
			if uint64(len(in)) < length {
				return nil
			}
			if key>>3 == 1 {
				return in[:length]
			}
			in = in[length:]
		default:
			return nil
		}
	}
	return nil
}

func readVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, len(b)
}

func getUser(_ interface{}, _ context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	user := appendField(nil, 1, requestID(in))
	user = appendField(user, 2, []byte("Bench"))
	user = appendField(user, 3, []byte("bench@example.com"))
	out := appendField(nil, 1, user)
	return &out, nil
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	encoding.RegisterCodec(rawCodec{})
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "orderly.users.v1.UserService",
		HandlerType: (*interface{})(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "GetUser", Handler: getUser}},
	}, struct{}{})
	fmt.Printf("listening %s\n", listener.Addr())
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
