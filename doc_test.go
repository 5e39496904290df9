package pipe_test

import (
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPackageDocIndex: every example and exported name the package doc's
// by-task index points to exists, whatever system the test runs on, so the
// index cannot drift from the code.
func TestPackageDocIndex(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	funcs := make(map[string]bool)
	var pkgDoc string
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && f.Name.Name == "pipe" {
			pkgDoc += f.Doc.Text()
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				n := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					typ := d.Recv.List[0].Type
					if s, ok := typ.(*ast.StarExpr); ok {
						typ = s.X
					}
					if id, ok := typ.(*ast.Ident); ok {
						n = id.Name + "." + n
					}
				}
				funcs[n] = true
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						funcs[ts.Name.Name] = true
					}
				}
			}
		}
	}
	if pkgDoc == "" {
		t.Fatal("no package doc found")
	}
	// Every [Name] becomes a link here; the loop below checks that it exists.
	p := comment.Parser{LookupSym: func(recv, name string) bool { return true }}
	d := p.Parse(pkgDoc)
	var index *comment.List
	for i, b := range d.Content {
		if para, ok := b.(*comment.Paragraph); ok && i+1 < len(d.Content) && len(para.Text) > 0 {
			if txt, ok := para.Text[0].(comment.Plain); ok && regexp.MustCompile(`^By task`).MatchString(string(txt)) {
				index, _ = d.Content[i+1].(*comment.List)
			}
		}
	}
	if index == nil {
		t.Fatal(`the package doc has no "By task" list`)
	}
	if n := len(index.Items); n < 6 || n > 12 {
		t.Errorf("the index has %d tasks; want 6 to 12", n)
	}
	example := regexp.MustCompile(`\bExample\w*`)
	for _, item := range index.Items {
		text := string((&comment.Printer{}).Text(&comment.Doc{Content: item.Content}))
		links, examples := 0, 0
		for _, b := range item.Content {
			para, ok := b.(*comment.Paragraph)
			if !ok {
				continue
			}
			for _, x := range para.Text {
				if l, ok := x.(*comment.DocLink); ok {
					links++
					name := l.Name
					if l.Recv != "" {
						name = l.Recv + "." + name
					}
					if !funcs[name] {
						t.Errorf("index item %q links to %s, which the package does not declare", text, name)
					}
				}
			}
		}
		for _, e := range example.FindAllString(text, -1) {
			examples++
			if !funcs[e] {
				t.Errorf("index item %q names %s, which no example file declares", text, e)
			}
		}
		if links == 0 || examples == 0 {
			t.Errorf("index item %q: want at least one link and one example", text)
		}
	}
}
