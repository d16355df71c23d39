package queryapi

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStrictInput covers values the codec used to accept and change or
// misreport: a missing or foreign Version, bytes that are not UTF-8, and
// list indexes no list can have. None of them reaches the handler.
func TestStrictInput(t *testing.T) {
	c := newCRGService(t, Options{})
	crg := func(kv ...string) string {
		return formBody(append([]string{"Action", "CreateReplicationGroup", "Version", "2015-02-02",
			"ReplicationGroupId", "rg", "ReplicationGroupDescription", "d"}, kv...)...)
	}
	cases := []struct {
		name, body string
		code, msg  string
	}{
		{"missing version", formBody("Action", "CreateReplicationGroup", "ReplicationGroupId", "rg", "ReplicationGroupDescription", "d"),
			"MissingParameter", "The request must contain the parameter Version"},
		{"empty version", formBody("Action", "CreateReplicationGroup", "Version", "", "ReplicationGroupId", "rg"),
			"MissingParameter", "The request must contain the parameter Version"},
		{"other version", formBody("Action", "CreateReplicationGroup", "Version", "2014-09-30", "ReplicationGroupId", "rg"),
			"InvalidAction", "Could not find operation CreateReplicationGroup for version 2014-09-30"},
		{"invalid UTF-8 in a string member", "Action=CreateReplicationGroup&Version=2015-02-02&ReplicationGroupId=rg&ReplicationGroupDescription=%FFd",
			"InvalidParameterValue", "ReplicationGroupDescription is invalid: not valid UTF-8"},
		{"invalid UTF-8 in a list item", crg("Tags.Tag.1.Key", "k", "Tags.Tag.1.Value", "\xc3("),
			"InvalidParameterValue", "Tags.Tag.1.Value is invalid: not valid UTF-8"},
		{"huge list index", crg("Tags.Tag.9999999999999999999.Key", "k"),
			"InvalidParameterValue", "Value '9999999999999999999' for parameter Tags.Tag is invalid: list indexes run from 1 to 1000"},
		{"list index past the bound", crg("PreferredCacheClusterAZs.AvailabilityZone.1001", "a"),
			"InvalidParameterValue", "PreferredCacheClusterAZs.AvailabilityZone is invalid"},
		{"list index zero", crg("Tags.Tag.0.Key", "k"), "InvalidParameterValue", "Value '0' for parameter Tags.Tag"},
		{"list index with a leading zero", crg("Tags.Tag.01.Key", "k"), "InvalidParameterValue", "Value '01'"},
		{"nested list index", crg("NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone.5000", "a"),
			"InvalidParameterValue", "NodeGroupConfiguration.NodeGroupConfiguration.1.ReplicaAvailabilityZones.AvailabilityZone is invalid"},
		{"too many parameters", crg() + strings.Repeat("&x=1", maxParams), "InvalidQueryParameter", "more than 16384 parameters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.calls.Load()
			res := postForm(t, c.srv.URL, tc.body)
			assertError(t, res, http.StatusBadRequest, "Sender", tc.code, xmlEscaped(tc.msg))
			if c.calls.Load() != before {
				t.Error("handler was called")
			}
		})
	}

	// The largest index is an item like any other, and valid UTF-8 of
	// every width comes through unchanged.
	res := postForm(t, c.srv.URL, crg("Tags.Tag.1000.Key", "k", "Tags.Tag.1000.Value", "é€😀"))
	if res.status != http.StatusOK {
		t.Fatalf("index 1000: %d %s", res.status, res.body)
	}
	if in := c.crg.get(); len(in.Tags) != 1 || *in.Tags[0].Value != "é€😀" {
		t.Errorf("decoded tags %+v", in.Tags)
	}
}

// TestCredentialScope checks that the region and account a request acts
// in come only from a well-formed credential scope: a region like ".."
// would otherwise name another region's or account's storage.
func TestCredentialScope(t *testing.T) {
	c := newCRGService(t, Options{Region: "eu-west-1", AccountID: "111111111111"})
	body := formBody("Action", "CreateReplicationGroup", "Version", "2015-02-02", "ReplicationGroupId", "rg", "ReplicationGroupDescription", "d")
	auth := func(cred string) string {
		return "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host, Signature=00"
	}
	send := func(t *testing.T, header, query string) rawResult {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/?"+query, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return readResult(t, resp)
	}
	refused := []struct {
		name, header, query string
		status              int
		code, msg           string
	}{
		{"dot-dot region", auth("123456789012/20260101/../elasticache/aws4_request"), "", 403,
			"SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '..'."},
		{"dot region", auth("123456789012/20260101/./elasticache/aws4_request"), "", 403, "SignatureDoesNotMatch", "not '.'"},
		{"empty region", auth("123456789012/20260101//elasticache/aws4_request"), "", 403, "SignatureDoesNotMatch", "not ''"},
		{"upper-case region", auth("123456789012/20260101/US-EAST-1/elasticache/aws4_request"), "", 403, "SignatureDoesNotMatch", "US-EAST-1"},
		{"region with a path", auth("123456789012/20260101/us-east-1%2F../elasticache/aws4_request"), "", 403, "SignatureDoesNotMatch", ""},
		{"region without a number", auth("123456789012/20260101/local/elasticache/aws4_request"), "", 403, "SignatureDoesNotMatch", "local"},
		{"too few elements", auth("garbage"), "", 400, "IncompleteSignature", "exactly 5 slash-delimited elements"},
		{"a slash too many", auth("123456789012/20260101/../us-east-1/elasticache/aws4_request"), "", 400, "IncompleteSignature", ""},
		{"presigned dot-dot region", "", "X-Amz-Credential=" + url.QueryEscape("123456789012/20260101/../elasticache/aws4_request"), 403,
			"SignatureDoesNotMatch", "not '..'"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := c.calls.Load()
			res := send(t, tc.header, tc.query)
			assertError(t, res, tc.status, "Sender", tc.code, xmlEscaped(tc.msg))
			if c.calls.Load() != before {
				t.Error("handler was called")
			}
		})
	}
	for _, region := range []string{"us-east-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1", "us-isob-east-1", "eusc-de-east-1", "ap-southeast-7"} {
		res := send(t, auth("123456789012/20260101/"+region+"/elasticache/aws4_request"), "")
		if info := c.info.get(); res.status != http.StatusOK || info.Region != region || info.AccountID != "123456789012" {
			t.Errorf("region %s: status %d, info %+v", region, res.status, info)
		}
	}
	res := send(t, "", "X-Amz-Credential="+url.QueryEscape("123456789012/20260101/ap-east-1/elasticache/aws4_request"))
	if info := c.info.get(); res.status != http.StatusOK || info.Region != "ap-east-1" || info.AccountID != "123456789012" {
		t.Errorf("presigned: status %d, info %+v", res.status, info)
	}
}

// xmlEscaped is s as it appears in an XML error message.
func xmlEscaped(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
