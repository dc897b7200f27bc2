// Package proto holds pullnet's protobuf sources: the peer-to-peer wire messages
// (pullnet/wire/v1) and the daemon's control API (pullnet/control/v1).
//
// The generated Go code under gen/ is committed, so building pullnet needs no
// protoc. To regenerate after editing a .proto file:
//
//	go install github.com/bufbuild/buf/cmd/buf@v1.75.0
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
//	go generate ./proto
//
// Generated types stay behind protocol/, node/ and the control API: public Go
// APIs use hand-written types and convert at the edge.
package proto

//go:generate buf generate
