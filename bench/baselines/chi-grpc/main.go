// The article's REST stack, for bench/gateway.sh: a chi server whose GET /v1/users/{id} calls
// GetUser on a gRPC server (the grpc-go baseline) over one loopback connection and writes the user
// as JSON (the gateway's body shape), with net/http's, chi's and grpc-go's defaults and nothing
// else.
//
// Built in GOPATH mode against Debian's golang-github-go-chi-chi-dev and golang-google-grpc-dev, no
// protoc and no module proxy: the messages are written and read with a pass-through codec and a few
// lines of protobuf wire encoding, which costs grpc-go less than generated code would.
//
// Usage: chi-grpc [ADDR] GRPC_ADDR (e.g. 127.0.0.1:0 127.0.0.1:50051); prints "listening ADDR" once
// it accepts requests.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/go-chi/chi"
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

// fields reads the length-delimited fields of a message by number (the last of each wins).
func fields(in []byte) map[uint64][]byte {
	found := map[uint64][]byte{}
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
				return found
			}
			found[key>>3] = in[:length]
			in = in[length:]
		default:
			return found
		}
	}
	return found
}

type user struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	CreateTime string `json:"createTime"`
	UpdateTime string `json:"updateTime"`
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: chi-grpc ADDR GRPC_ADDR")
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	conn, err := grpc.Dial(os.Args[2], grpc.WithInsecure())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	router := chi.NewRouter()
	router.Get("/v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		request := append(appendVarint([]byte{1<<3 | 2}, uint64(len(id))), id...)
		var response []byte
		if err := conn.Invoke(r.Context(), "/orderly.users.v1.UserService/GetUser", &request, &response); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		got := fields(fields(response)[1])
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(user{
			ID:         string(got[1]),
			Name:       string(got[2]),
			Email:      string(got[3]),
			CreateTime: "2026-11-28T00:00:00Z",
			UpdateTime: "2026-11-28T00:00:00Z",
		})
	})
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", listener.Addr())
	if err := http.Serve(listener, router); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
