package webhook_test

import (
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securevision/events/httpd/apidocs"
	"github.com/securevision/events/internal/webhook"
)

func reference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## 18. Webhooks")
	if i < 0 {
		t.Fatal("docs/api.md has no Webhooks section")
	}
	return doc[i:]
}

// TestReferenceVector: the signed delivery shown in docs/api.md verifies
// with the secret it names, by the spec's rule and by the server's signer.
func TestReferenceVector(t *testing.T) {
	doc := reference(t)
	find := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(doc)
		if m == nil {
			t.Fatalf("docs/api.md: %s not found", re)
		}
		return m[1]
	}
	hdr := http.Header{}
	hdr.Set("webhook-id", find(`(?m)^webhook-id: (\S+)$`))
	hdr.Set("webhook-timestamp", find(`(?m)^webhook-timestamp: (\d+)$`))
	hdr.Set("webhook-signature", find(`(?m)^webhook-signature: (\S+)$`))
	body := []byte(find(`(?m)^(\{"type":.*\})$`))
	secret := find("signed with the secret\\s+`(whsec_[^`]+)`")
	ts, _ := strconv.ParseInt(hdr.Get("webhook-timestamp"), 10, 64)
	if err := verifySpec(secret, hdr, body, time.Unix(ts, 0)); err != nil {
		t.Fatalf("the documented delivery does not verify: %v", err)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if got := webhook.Sign(key, hdr.Get("webhook-id"), ts, body); got != hdr.Get("webhook-signature") {
		t.Fatalf("the server signs it %s", got)
	}
}

// TestReferenceStatesLimits: the limits and defaults docs/api.md and the
// OpenAPI document state are the package's.
func TestReferenceStatesLimits(t *testing.T) {
	doc := reference(t)
	spec := string(apidocs.Spec())
	for _, want := range []string{
		strconv.Itoa(webhook.MaxBodyBytes) + " bytes",
		"at most " + strconv.Itoa(webhook.MaxURLBytes) + " bytes",
		"at most " + strconv.Itoa(webhook.MaxDescriptionLen) + " characters",
		"at most " + strconv.Itoa(webhook.MaxSources) + " entries",
		"at most " + strconv.Itoa(webhook.DefaultMaxWebhooks) + " webhooks",
		"(" + webhook.DefaultTimeout.String() + ")",
		"from " + strconv.Itoa(int(webhook.DefaultInitialBackoff/time.Second)) + " s up to " +
			strconv.Itoa(int(webhook.DefaultMaxBackoff/time.Minute)) + " minutes",
		"at most one hour",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/api.md, Webhooks, does not say %q", want)
		}
	}
	if webhook.MaxRetryAfter != time.Hour {
		t.Error("MaxRetryAfter changed: update docs/api.md")
	}
	for _, want := range []string{
		"at most " + strconv.Itoa(webhook.MaxBodyBytes) + " bytes",
		"at most " + strconv.Itoa(webhook.DefaultMaxWebhooks) + ";",
	} {
		if !strings.Contains(spec, want) {
			t.Errorf("the OpenAPI document does not say %q", want)
		}
	}
}
