package handlers

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// families are the endpoint packages the application (app) mounts; only it may import them.
var families = []string{"oauth", "browser", "account", "accountmail", "tokenapi", "admin", "registration", "passkeys"}

// The house's shape holds: nothing under handlers/ imports an endpoint family (arrows run from the families to
// the shared packages), no non-test file is over 600 lines and no package over 2,000.
func TestLayout(t *testing.T) {
	const module = "github.com/latchkey/latchkey/handlers/"
	dirs, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, ".")
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		pkgLines := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(string(src), "\n")
			pkgLines += lines
			if lines > 600 {
				t.Errorf("%s has %d lines, over 600", f, lines)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, fam := range families {
					if path == module+fam {
						t.Errorf("%s imports the endpoint family %s: only the application (app) mounts families", f, fam)
					}
				}
			}
		}
		if pkgLines > 2000 {
			t.Errorf("package %s has %d lines, over 2,000", dir, pkgLines)
		}
	}
}
