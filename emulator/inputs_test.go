package emulator

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/aws/smithy-go"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// handlerInputs lists the input types of every *Emulator method shaped like
// an operation handler, so a handler added without member rules is caught.
func handlerInputs() map[string]reflect.Type {
	ctxType := reflect.TypeFor[context.Context]()
	errType := reflect.TypeFor[error]()
	out := map[string]reflect.Type{}
	et := reflect.TypeFor[*Emulator]()
	for i := range et.NumMethod() {
		mt := et.Method(i).Type // receiver first
		if mt.NumIn() != 3 || mt.NumOut() != 2 || mt.In(1) != ctxType || mt.Out(1) != errType ||
			mt.In(2).Kind() != reflect.Pointer || !strings.HasSuffix(mt.In(2).Elem().Name(), "Input") {
			continue
		}
		out[mt.In(2).Elem().Name()] = mt.In(2).Elem()
	}
	return out
}

// TestInputMembersClassified: every member of every handler's input has a
// rule, every rule names a real member, and Register accepts the table.
func TestInputMembersClassified(t *testing.T) {
	rules := inputMemberRules()
	inputs := handlerInputs()
	for name, it := range inputs {
		opRules, ok := rules[name]
		if !ok {
			t.Errorf("%s has a handler but no member rules", name)
			continue
		}
		for i := range it.NumField() {
			if f := it.Field(i); f.IsExported() {
				if _, ok := opRules[f.Name]; !ok {
					t.Errorf("%s.%s is not classified (applied, reported or refused)", name, f.Name)
				}
			}
		}
		for member := range opRules {
			if _, ok := it.FieldByName(member); !ok {
				t.Errorf("rule for %s.%s names no member", name, member)
			}
		}
	}
	for name := range rules {
		if _, ok := inputs[name]; !ok {
			t.Errorf("rules for %s, which has no handler", name)
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Register: %v", r)
			}
		}()
		(&Emulator{}).Register(queryapi.New(queryapi.Options{Logger: slog.New(slog.DiscardHandler)}))
	}()
}

// TestRefusedMembers sends, through the real SDK client, every refused
// member with a value other than its defaults: each answers NotImplemented
// (501, Receiver) naming the member.
func TestRefusedMembers(t *testing.T) {
	_, client := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rules := inputMemberRules()
	inputs := handlerInputs()
	names := make([]string, 0, len(rules))
	for name := range rules {
		names = append(names, name)
	}
	sort.Strings(names)
	// A refused member answers NotImplemented naming it (501); one AWS
	// itself refuses answers AWS's error (400), whatever its value.
	awsMessage := "Use of cache security groups is not permitted in this API version for your account."
	counts := map[memberUse]int{}
	for _, name := range names {
		for member, rule := range rules[name] {
			if rule.use != memberRefused && rule.use != memberRefusedByAWS {
				continue
			}
			counts[rule.use]++
			t.Run(strings.TrimSuffix(name, "Input")+"/"+member, func(t *testing.T) {
				in := reflect.New(inputs[name])
				f := in.Elem().FieldByName(member)
				f.Set(sampleValue(t, f.Type(), rule.defaults))
				err := callOperation(ctx, t, client, in)
				wantCode, wantStatus, wantMessage := "NotImplemented", http.StatusNotImplemented, member
				if rule.use == memberRefusedByAWS {
					wantCode, wantStatus, wantMessage = "InvalidParameterValue", http.StatusBadRequest, awsMessage
				}
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != wantCode || !strings.Contains(ae.ErrorMessage(), wantMessage) {
					t.Fatalf("err = %v, want %s saying %q", err, wantCode, wantMessage)
				}
				var re *awshttp.ResponseError
				if !errors.As(err, &re) || re.HTTPStatusCode() != wantStatus {
					t.Fatalf("err = %v, want HTTP %d", err, wantStatus)
				}
			})
		}
	}
	if counts[memberRefused] == 0 || counts[memberRefusedByAWS] == 0 {
		t.Fatalf("refused members by kind: %v; want some of each", counts)
	}
}

// TestRefusedMembersChangeNothing: refused requests (an AUTH token without
// TLS, an IPv6 network type) leave no cluster.
func TestRefusedMembersChangeNothing(t *testing.T) {
	_, client := startTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, in := range []*elasticache.CreateCacheClusterInput{
		{CacheClusterId: aws.String("auth"), CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
			AuthToken: aws.String("a-long-enough-auth-token")},
		{CacheClusterId: aws.String("ipv6"), CacheNodeType: aws.String("cache.t3.micro"), Engine: aws.String("redis"),
			NetworkType: types.NetworkTypeIpv6},
	} {
		if _, err := client.CreateCacheCluster(ctx, in); err == nil {
			t.Fatalf("CreateCacheCluster %s succeeded", *in.CacheClusterId)
		}
		_, err := client.DescribeCacheClusters(ctx, &elasticache.DescribeCacheClustersInput{CacheClusterId: in.CacheClusterId})
		var nf *types.CacheClusterNotFoundFault
		if !errors.As(err, &nf) {
			t.Fatalf("after a refused create, DescribeCacheClusters %s = %v, want CacheClusterNotFound", *in.CacheClusterId, err)
		}
	}
}

// TestRefusedMemberDefaultsAccepted: values that ask for what the emulator
// does anyway pass the audit.
func TestRefusedMemberDefaultsAccepted(t *testing.T) {
	rules := inputMemberRules()
	in := &elasticache.CreateReplicationGroupInput{
		NetworkType: types.NetworkTypeIpv4, IpDiscovery: types.IpDiscoveryIpv4,
		ClusterMode: types.ClusterModeDisabled, DataTieringEnabled: aws.Bool(false), Durability: types.DurabilityDefault,
	}
	refused := refusedMembers(reflect.TypeOf(*in), rules)
	if err := refuseMembers(reflect.ValueOf(in).Elem(), refused); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	in.Durability = types.DurabilitySync
	if err := refuseMembers(reflect.ValueOf(in).Elem(), refused); err == nil || !strings.Contains(err.Error(), "Durability=sync") {
		t.Fatalf("Durability=sync: err = %v", err)
	}
}

// startTestServer starts an emulator on the process runtime and returns it
// with a real SDK client (no retries: every answer is asserted as is).
func startTestServer(t *testing.T) (*Server, *elasticache.Client) {
	t.Helper()
	srv, err := Start(context.Background(), Config{
		Listen: "127.0.0.1:0", Runtime: "process", DataDir: t.TempDir(), AddressBase: "127.0.90.2",
	})
	if srv != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	client := elasticache.New(elasticache.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return srv, client
}

// callOperation calls the client method of in's operation. Members the SDK
// requires are filled in with placeholders as its validation names them:
// the audit answers before any of them is looked at.
func callOperation(ctx context.Context, t *testing.T, client *elasticache.Client, in reflect.Value) error {
	t.Helper()
	op := strings.TrimSuffix(in.Elem().Type().Name(), "Input")
	method := reflect.ValueOf(client).MethodByName(op)
	if !method.IsValid() {
		t.Fatalf("the SDK client has no method %s", op)
	}
	for range 10 {
		res := method.Call([]reflect.Value{reflect.ValueOf(ctx), in})
		err, _ := res[1].Interface().(error)
		var invalid smithy.InvalidParamsError
		if !errors.As(err, &invalid) {
			return err
		}
		for _, e := range invalid.Errs() {
			var pe smithy.InvalidParamError
			if !errors.As(e, &pe) {
				t.Fatalf("%s: %v", op, e)
			}
			// Field is "XInput.Member": the context, then the member.
			member := pe.Field()[strings.LastIndex(pe.Field(), ".")+1:]
			f := in.Elem().FieldByName(member)
			if !f.IsValid() {
				t.Fatalf("%s: cannot fill required member %s", op, pe.Field())
			}
			f.Set(sampleValue(t, f.Type(), nil))
		}
	}
	t.Fatalf("%s: required members never satisfied", op)
	return nil
}

// sampleValue is a set value of type typ that is none of avoid.
func sampleValue(t *testing.T, typ reflect.Type, avoid []string) reflect.Value {
	t.Helper()
	switch {
	case typ.Kind() == reflect.Pointer && typ.Elem().Kind() == reflect.Struct:
		v := reflect.New(typ.Elem())
		v.Elem().Set(sampleValue(t, typ.Elem(), nil))
		return v
	case typ.Kind() == reflect.Struct:
		// A structure is sent only with a member set, and the SDK wants
		// its required ones: set every scalar member.
		v := reflect.New(typ).Elem()
		for i := range typ.NumField() {
			f := typ.Field(i)
			if k := f.Type.Kind(); f.IsExported() && (k == reflect.String || k == reflect.Pointer && f.Type.Elem().Kind() != reflect.Struct) {
				v.Field(i).Set(sampleValue(t, f.Type, nil))
			}
		}
		return v
	case typ.Kind() == reflect.Pointer:
		v := reflect.New(typ.Elem())
		v.Elem().Set(sampleValue(t, typ.Elem(), avoid))
		return v
	case typ.Kind() == reflect.Slice:
		v := reflect.MakeSlice(typ, 1, 1)
		v.Index(0).Set(sampleValue(t, typ.Elem(), avoid))
		return v
	case typ.Kind() == reflect.Bool:
		return reflect.ValueOf(!slices.Contains(avoid, "true"))
	case typ.Kind() == reflect.Int32:
		return reflect.ValueOf(int32(2))
	case typ.Kind() == reflect.String:
		candidates := []string{"sample-1"}
		if values := reflect.Zero(typ).MethodByName("Values"); values.IsValid() {
			all := values.Call(nil)[0]
			candidates = nil
			for i := range all.Len() {
				candidates = append(candidates, all.Index(i).String())
			}
		}
		for _, c := range candidates {
			if !slices.Contains(avoid, c) {
				return reflect.ValueOf(c).Convert(typ)
			}
		}
	}
	t.Fatalf("no sample value of %v avoiding %v", typ, avoid)
	return reflect.Value{}
}
