package apidocs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/securevision/events/httpd/apidocs"
)

// The hand-written API reference and the configuration it documents,
// relative to this package's directory (where go test runs).
var (
	referencePath = filepath.Join("..", "..", "docs", "api.md")
	configPath    = filepath.Join("..", "..", "cmd", "securevision", "config.go")
)

func readReference(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("read the API reference: %v", err)
	}
	return string(b)
}

// referencePathSyntax turns the router's path syntax into the one the
// reference (and the OpenAPI document) uses: /faces/:event_id becomes
// /faces/{event_id}.
func referencePathSyntax(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestReferenceCoversOperations: docs/api.md names every operation of the
// OpenAPI document, and the docs pages, as "`METHOD /path`", so a route
// added to the spec without a reference entry fails here.
func TestReferenceCoversOperations(t *testing.T) {
	doc := readReference(t)
	ops := apidocs.Operations()
	if len(ops) == 0 {
		t.Fatal("apidocs.Operations() is empty")
	}
	want := make([]string, 0, len(ops)+3)
	for _, op := range ops {
		want = append(want, "`"+op.Method+" "+referencePathSyntax(op.Path)+"`")
	}
	for _, p := range []string{apidocs.DocsPath, apidocs.RedocPath, apidocs.SpecPath} {
		want = append(want, "`GET "+p+"`")
	}
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("%s does not document %s", referencePath, w)
		}
	}
}

// TestReferenceCoversConfig: docs/api.md mentions every environment
// variable the server reads. The names come from the text of
// cmd/securevision/config.go (importing package main is not possible):
// each env tag joined to the envPrefix tags of the structs around it, as
// caarlos0/env and the file's envKey compose them.
func TestReferenceCoversConfig(t *testing.T) {
	doc := readReference(t)
	vars := configVars(t)
	// Config has about thirty settings; far fewer means the parse below
	// no longer understands the file, not that the settings went away.
	if len(vars) < 20 {
		t.Fatalf("found only %d variables in %s: %v", len(vars), configPath, vars)
	}
	for _, v := range vars {
		if !strings.HasPrefix(v, "SECUREVISION__") {
			t.Errorf("%s: variable %s lacks the SECUREVISION__ prefix", configPath, v)
			continue
		}
		if !regexp.MustCompile(regexp.QuoteMeta(v) + `\b`).MatchString(doc) {
			t.Errorf("%s does not mention %s", referencePath, v)
		}
	}
}

// configVars lists the variable names of the Config type in config.go.
func configVars(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, configPath, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", configPath, err)
	}
	structs := map[string]*ast.StructType{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, s := range gd.Specs {
			if ts, ok := s.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
			}
		}
	}
	root, ok := structs["Config"]
	if !ok {
		t.Fatalf("%s: no struct type Config", configPath)
	}
	var vars []string
	var walk func(st *ast.StructType, prefix string, depth int)
	walk = func(st *ast.StructType, prefix string, depth int) {
		if depth > 8 {
			t.Fatalf("%s: Config nests too deep", configPath)
		}
		for _, field := range st.Fields.List {
			tag := fieldTag(t, field)
			// A nested struct, inline or declared in the file, adds its
			// envPrefix to the names of its fields.
			var inner *ast.StructType
			switch ft := field.Type.(type) {
			case *ast.StructType:
				inner = ft
			case *ast.Ident:
				inner = structs[ft.Name]
			}
			if inner != nil {
				walk(inner, prefix+tag.Get("envPrefix"), depth+1)
				continue
			}
			name, _, _ := strings.Cut(tag.Get("env"), ",")
			if name == "" || name == "-" {
				continue
			}
			vars = append(vars, prefix+name)
		}
	}
	walk(root, "", 0)
	return vars
}

func fieldTag(t *testing.T, field *ast.Field) reflect.StructTag {
	t.Helper()
	if field.Tag == nil {
		return ""
	}
	s, err := strconv.Unquote(field.Tag.Value)
	if err != nil {
		t.Fatalf("%s: tag %s: %v", configPath, field.Tag.Value, err)
	}
	return reflect.StructTag(s)
}
