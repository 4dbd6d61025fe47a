// Package internal_test holds the import-layering test of the whole
// module: which packages may depend on which.
package internal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const (
	module = "github.com/securevision/events"
	pebble = "github.com/cockroachdb/pebble"
)

// listed is what go list reports of one package.
type listed struct {
	ImportPath string
	ForTest    string // set on a package's test variants
	Standard   bool
	Imports    []string
	Deps       []string
}

// base is the package's path without go list's test variant suffix
// ("p [q.test]").
func base(path string) string {
	p, _, _ := strings.Cut(path, " ")
	return p
}

// isTest reports whether l is compiled only into a test binary: a package
// with its _test.go files, an external _test package or a test main.
func (l listed) isTest() bool {
	return l.ForTest != "" || strings.HasSuffix(base(l.ImportPath), ".test")
}

// goList lists every package of the module with its tests and all their
// dependencies.
func goList(t *testing.T, tags string) []listed {
	t.Helper()
	args := []string{"list", "-deps", "-test", "-json=ImportPath,ForTest,Standard,Imports,Deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, module+"/...")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, l)
	}
	return pkgs
}

// TestLayering keeps the module's layers apart:
//
//   - the write path (ingest and its subpackages) and the stream
//     (wsfanout) do not depend on the read side (projections): what they
//     share with it is the vocabulary, in internal/vocab;
//   - only eventlog uses Pebble, the storage engine: everything else goes
//     through the log's API, so the engine and its key layout can change
//     in one package. Tests, and internal/storetest which opens stores for
//     them, may still import Pebble's virtual filesystem (vfs, errorfs) to
//     hand eventlog an in-memory or failing disk;
//   - internal/vocab imports only the standard library, so that any layer
//     can import it without importing another;
//   - internal/httpx imports only the standard library and vocab.
//
// Packages are checked with and without the gocv build tag (the vision
// pipeline's OpenCV files).
func TestLayering(t *testing.T) {
	for _, tags := range []string{"", "gocv"} {
		pkgs := goList(t, tags)
		std := map[string]bool{}
		for _, l := range pkgs {
			if l.Standard {
				std[l.ImportPath] = true
			}
		}
		seen := map[string]bool{}
		for _, l := range pkgs {
			path := base(l.ImportPath)
			if !strings.HasPrefix(path, module+"/") && path != module {
				continue
			}
			seen[path] = true
			// The write path and the stream never reach the read side.
			if !l.isTest() && (under(path, module+"/ingest") || under(path, module+"/wsfanout")) {
				for _, d := range l.Deps {
					if under(base(d), module+"/projections") {
						t.Errorf("[tags %q] %s depends on %s: the write path and the stream must not depend on the read side (use internal/vocab)", tags, path, base(d))
					}
				}
			}
			// Only eventlog uses Pebble.
			owner := path
			if l.ForTest != "" {
				owner = l.ForTest
			}
			for _, imp := range l.Imports {
				imp = base(imp)
				if !under(imp, pebble) {
					continue
				}
				vfs := strings.Contains(imp, "/vfs")
				switch {
				case owner == module+"/eventlog":
				case vfs && (l.isTest() || path == module+"/internal/storetest"):
				default:
					t.Errorf("[tags %q] %s imports %s: only eventlog may use Pebble", tags, l.ImportPath, imp)
				}
			}
			// vocab is a leaf; httpx sits on vocab alone. (Direct imports
			// suffice: the standard library imports nothing else.)
			if !l.isTest() {
				switch path {
				case module + "/internal/vocab":
					for _, imp := range l.Imports {
						if !std[base(imp)] {
							t.Errorf("[tags %q] %s imports %s: it may import only the standard library", tags, path, base(imp))
						}
					}
				case module + "/internal/httpx":
					for _, imp := range l.Imports {
						if !std[base(imp)] && base(imp) != module+"/internal/vocab" {
							t.Errorf("[tags %q] %s imports %s: it may import only the standard library and internal/vocab", tags, path, base(imp))
						}
					}
				}
			}
			// "Nothing but internal/core opens the log" is a rule about
			// calls, not imports: internal/core/layering_test.go holds it.
		}
		// The rules above name these packages: if one moves, the test must
		// follow it rather than pass vacuously.
		for _, p := range []string{"ingest", "wsfanout", "projections", "eventlog", "internal/storetest", "internal/vocab", "internal/httpx"} {
			if !seen[module+"/"+p] {
				t.Errorf("[tags %q] go list did not report %s/%s", tags, module, p)
			}
		}
	}
}

// under reports whether path is pkg or one of its subpackages.
func under(path, pkg string) bool {
	return path == pkg || strings.HasPrefix(path, pkg+"/")
}
