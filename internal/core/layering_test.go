package core_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/securevision/events"

// TestOnlyCoreOpensTheLog holds the rule package core's doc states: the
// store is opened through core.Open, so no non-test code outside
// internal/core refers to eventlog.Open (called or passed as a value), and
// none imports internal/storetest, the tests' wrapper over core.
func TestOnlyCoreOpensTheLog(t *testing.T) {
	root := moduleRoot(t)
	var files int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		files++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		eventlogName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch p {
			case module + "/internal/storetest":
				if !strings.HasPrefix(rel, "internal/storetest/") {
					t.Errorf("%s imports internal/storetest: non-test code opens its store with internal/core", rel)
				}
			case module + "/eventlog":
				eventlogName = "eventlog"
				if imp.Name != nil {
					eventlogName = imp.Name.Name
				}
			}
		}
		if eventlogName == "" || strings.HasPrefix(rel, "internal/core/") {
			return nil
		}
		fset := token.NewFileSet()
		f, err = parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Open" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == eventlogName {
				t.Errorf("%s: %s.Open outside internal/core: open the store with core.Open", fset.Position(sel.Pos()), eventlogName)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked only %d Go files under %s: is it the module root?", files, root)
	}
}

// moduleRoot is the directory of the go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if !strings.Contains(string(b), "module "+module+"\n") {
				t.Fatalf("%s/go.mod is not module %s", dir, module)
			}
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
