// The chi baseline of bench/gateway.sh: a bare Go HTTP/1.1 server with the chi router whose
// GET /v1/users/{id} answers a fixed user from memory as JSON (the gateway's body shape), with
// net/http's and chi's defaults and nothing else.
//
// Built in GOPATH mode against Debian's golang-github-go-chi-chi-dev, no module proxy needed.
//
// Usage: chi-users [ADDR] (default 127.0.0.1:0); prints "listening ADDR" once it accepts requests.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/go-chi/chi"
)

type user struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	CreateTime string `json:"createTime"`
	UpdateTime string `json:"updateTime"`
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	router := chi.NewRouter()
	router.Get("/v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(user{
			ID:         chi.URLParam(r, "id"),
			Name:       "Bench",
			Email:      "bench@example.com",
			CreateTime: "2026-11-28T00:00:00Z",
			UpdateTime: "2026-11-28T00:00:00Z",
		})
	})
	listener, err := net.Listen("tcp", addr)
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
