package bench

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// globalSlog are the log/slog functions that log through, read or replace
// the process-wide logger.
var globalSlog = map[string]bool{
	"Debug": true, "Info": true, "Warn": true, "Error": true, "Log": true, "LogAttrs": true,
	"DebugContext": true, "InfoContext": true, "WarnContext": true, "ErrorContext": true,
	"Default": true, "SetDefault": true, "SetLogLoggerLevel": true,
}

// Code logs only through the logger it is given (the CLI builds one per
// invocation): no package-level slog call and no log package (it writes
// through the same default) in pkg/ and internal/, tests and their helpers
// (internal/testenv) aside.
func TestNoGlobalLogger(t *testing.T) {
	for _, dir := range []string{"pkg", "internal"} {
		err := filepath.WalkDir(filepath.Join("../..", dir), func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case d.IsDir() && d.Name() == "testenv":
				return fs.SkipDir // test helpers
			case !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
				checkGlobalLogger(t, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func checkGlobalLogger(t *testing.T, path string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	slogName := ""
	for _, im := range f.Imports {
		switch p, _ := strconv.Unquote(im.Path.Value); p {
		case "log":
			t.Errorf("%s imports log: log through a *slog.Logger given by the caller", path)
		case "log/slog":
			slogName = "slog"
			if im.Name != nil {
				slogName = im.Name.Name
			}
		}
	}
	if slogName == "" {
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == slogName && globalSlog[sel.Sel.Name] {
			t.Errorf("%s: slog.%s uses the process-wide logger; log through the *slog.Logger given by the caller", fset.Position(sel.Pos()), sel.Sel.Name)
		}
		return true
	})
}
