package emulator

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/elasticache-local/elasticache-local/queryapi"
)

// Every member of every registered operation's input is accounted for here:
// the emulator either applies it, reports it back as AWS does, or refuses it
// with NotImplemented. A member that would be accepted and then ignored
// makes a client believe something was done (TLS, an AUTH token) that was
// not, so registering an operation with an unclassified member panics: a
// new handler or an SDK upgrade forces a decision.

// memberUse says what the emulator does with one input member.
type memberUse int

const (
	// memberApplied members have an effect visible in a Describe or on the
	// nodes (validation against state included).
	memberApplied memberUse = iota + 1
	// memberReported members have no local meaning (VPC security groups,
	// SNS topics, maintenance windows); they are stored and reported back
	// exactly as AWS reports them.
	memberReported
	// memberRefused members answer NotImplemented unless their value is one
	// of the rule's defaults (what the emulator does anyway).
	memberRefused
	// memberUnusedByAWS members are documented by AWS as not used.
	memberUnusedByAWS
	// memberRefusedByAWS members are refused by AWS itself on every
	// account today (EC2-Classic security groups): the rule's awsError
	// answers, as AWS does, whatever the value.
	memberRefusedByAWS
)

// memberRule is the classification of one input member.
type memberRule struct {
	use memberUse
	// defaults are the values of a refused member that are accepted because
	// they ask for what the emulator does anyway (TransitEncryptionEnabled
	// false, NetworkType ipv4), as formatValue prints them.
	defaults []string
	// awsError is AWS's answer to a memberRefusedByAWS member.
	awsError func() error
}

// refusedMember is a refused member of one input type, located by field
// index so a request costs no lookup by name.
type refusedMember struct {
	index    int
	name     string
	defaults []string
	awsError func() error
}

// handle registers h on svc behind the member audit: a refused member with
// a value other than its defaults is answered with NotImplemented before h
// runs, so the request changes nothing.
func handle[I, O any](svc *queryapi.Service, rules map[string]map[string]memberRule, h func(context.Context, *I) (*O, error)) {
	refused := refusedMembers(reflect.TypeFor[I](), rules)
	queryapi.Handle(svc, func(ctx context.Context, in *I) (*O, error) {
		if in != nil {
			if err := refuseMembers(reflect.ValueOf(in).Elem(), refused); err != nil {
				return nil, err
			}
		}
		return h(ctx, in)
	})
}

// refusedMembers lists the refused members of input type t and panics when
// a member of t has no rule, or a rule names no member of t.
func refusedMembers(t reflect.Type, rules map[string]map[string]memberRule) []refusedMember {
	opRules, ok := rules[t.Name()]
	if !ok {
		panic("emulator: no member rules for " + t.Name())
	}
	var out []refusedMember
	seen := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		rule, ok := opRules[f.Name]
		if !ok {
			panic(fmt.Sprintf("emulator: member %s.%s is not classified (applied, reported or refused)", t.Name(), f.Name))
		}
		seen++
		if rule.use == memberRefused || rule.use == memberRefusedByAWS {
			out = append(out, refusedMember{index: i, name: f.Name, defaults: rule.defaults, awsError: rule.awsError})
		}
	}
	if seen != len(opRules) {
		panic(fmt.Sprintf("emulator: member rules of %s name members it does not have", t.Name()))
	}
	return out
}

// refuseMembers answers NotImplemented for the first refused member that is
// set to a value other than its defaults, or AWS's own error for a member
// AWS refuses.
func refuseMembers(in reflect.Value, refused []refusedMember) error {
	for _, m := range refused {
		v := in.Field(m.index)
		if memberUnset(v) {
			continue
		}
		if m.awsError != nil {
			return m.awsError()
		}
		shown, scalar := formatValue(v)
		if scalar && slices.Contains(m.defaults, shown) {
			continue
		}
		if scalar {
			return notImplemented(m.name + "=" + shown)
		}
		return notImplemented(m.name)
	}
	return nil
}

// memberUnset reports whether a member was left out of the request.
func memberUnset(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Slice, reflect.Map, reflect.String:
		return v.Len() == 0
	}
	return v.IsZero()
}

// formatValue prints a scalar member's value (through its pointer) as the
// query string carries it; scalar is false for lists and structures.
func formatValue(v reflect.Value) (shown string, scalar bool) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), true
	case reflect.String:
		return v.String(), true
	case reflect.Int, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), true
	}
	return "", false
}
