package vocab_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/securevision/events/internal/vocab"
)

// TestTypeCodesOnDisk pins the codes: they are in every stored record
// header and type index key, so a store written by an older build must
// read the same types back.
func TestTypeCodesOnDisk(t *testing.T) {
	for name, code := range map[string]uint8{"face_match": 1, "plate_read": 2, "correction": 3,
		"watchlist_change": 4, "gallery_change": 5, "erasure": 6} {
		if got := vocab.TypeCode(name); got != code {
			t.Errorf("TypeCode(%q) = %d, want %d", name, got, code)
		}
		if got := vocab.TypeName(code); got != name {
			t.Errorf("TypeName(%d) = %q, want %q", code, got, name)
		}
	}
	if vocab.MaxTypeCode != 6 {
		t.Errorf("MaxTypeCode = %d: a new type needs a new code, and this test its name", vocab.MaxTypeCode)
	}
}

// TestTypeNamesAndCodes: codes 1..MaxTypeCode all name a type and map back,
// nothing else does, and TypeNames and the enum message list every type.
func TestTypeNamesAndCodes(t *testing.T) {
	names := vocab.TypeNames()
	if len(names) != int(vocab.MaxTypeCode) {
		t.Fatalf("TypeNames() = %v, want %d names", names, vocab.MaxTypeCode)
	}
	for c := range 256 {
		code := uint8(c)
		name := vocab.TypeName(code)
		if (name != "") != (code >= 1 && code <= vocab.MaxTypeCode) {
			t.Errorf("TypeName(%d) = %q", code, name)
		}
		if name == "" {
			continue
		}
		if vocab.TypeCode(name) != code || names[code-1] != name {
			t.Errorf("code %d, name %q: TypeCode %d, TypeNames()[%d] %q", code, name, vocab.TypeCode(name), code-1, names[code-1])
		}
		if !strings.Contains(vocab.QueryTypeEnumMsg, "'"+name+"'") {
			t.Errorf("QueryTypeEnumMsg %q does not name %s", vocab.QueryTypeEnumMsg, name)
		}
		if strings.Contains(vocab.TypeEnumMsg, "'"+name+"'") != vocab.IsDetection(code) ||
			(vocab.DetectionCode(name) == code) != vocab.IsDetection(code) {
			t.Errorf("TypeEnumMsg %q / DetectionCode disagree with IsDetection on %s", vocab.TypeEnumMsg, name)
		}
	}
	for _, s := range []string{"", "FACE_MATCH", "face_match ", "plate", "\x00"} {
		if vocab.TypeCode(s) != 0 {
			t.Errorf("TypeCode(%q) = %d, want 0", s, vocab.TypeCode(s))
		}
	}
	names[0] = "changed"
	if vocab.TypeNames()[0] == "changed" {
		t.Error("TypeNames shares its slice with callers")
	}
}

// TestTypeCodeDoesNotAllocate: ingest looks the code up for every appended
// event.
func TestTypeCodeDoesNotAllocate(t *testing.T) {
	name := string([]byte(vocab.PlateRead)) // not the constant's storage
	if n := testing.AllocsPerRun(100, func() { _ = vocab.TypeCode(name) }); n != 0 {
		t.Errorf("TypeCode allocates %v times", n)
	}
}

// TestErrorBodies: FastAPI's shapes, as the original service's clients
// parse them.
func TestErrorBodies(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{vocab.ErrorBody{Detail: "Not Found"}, `{"detail":"Not Found"}`},
		{vocab.ValidationBody{Detail: []vocab.FieldError{vocab.QueryError("limit", "int_parsing", "bad")}},
			`{"detail":[{"loc":["query","limit"],"msg":"bad","type":"int_parsing"}]}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%#v: %s %v, want %s", c.v, b, err, c.want)
		}
	}
}

func BenchmarkTypeCode(b *testing.B) {
	name := string([]byte(vocab.PlateRead))
	for b.Loop() {
		_ = vocab.TypeCode(name)
	}
}
