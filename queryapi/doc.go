// Package queryapi is the wire layer of elasticache-local: it speaks the AWS
// Query protocol of Amazon ElastiCache (API version 2015-02-02) and hands
// typed aws-sdk-go-v2 values to the emulator.
//
// Nothing about the wire format is written by hand. Requests are decoded by
// walking the SDK's own Smithy schemas (package
// github.com/aws/aws-sdk-go-v2/service/elasticache/schemas) and setting the
// fields of the SDK's *XInput structs by reflection; responses are produced
// by the SDK's own Serialize methods driving an XML smithy.ShapeSerializer;
// error codes and HTTP statuses come from the awsQueryError traits of the
// SDK's modelled error types. The operation table is generated from the
// pinned SDK module by ./internal/gen, so the codec always covers exactly
// the operations of the SDK in go.mod.
//
// The emulator registers one typed handler per operation:
//
//	svc := queryapi.New(queryapi.Options{Region: "us-east-1", AccountID: "000000000000"})
//	queryapi.Handle(svc, func(ctx context.Context, in *elasticache.CreateReplicationGroupInput) (*elasticache.CreateReplicationGroupOutput, error) {
//		info := queryapi.InfoFrom(ctx) // region, account, request id
//		...
//	})
//	http.ListenAndServe(addr, svc)
//
// Operations without a handler answer 501 NotImplemented rather than a fake
// success.
//
// What one request may cost is bounded by the model (params.go): every key
// is checked against the operation's input schema before anything is built
// for it, and the body size, the number of parameters and list indexes are
// capped. The SigV4 credential scope gives the request's region and
// account; a scope naming no valid region is refused (identity.go). With
// Options.Credentials set, every request must also be signed with one of
// them (auth.go, package sigv4).
package queryapi

//go:generate go run ./internal/gen -o operations_gen.go
