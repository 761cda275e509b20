package image

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFunctionsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Functions {
		if seen[f.Name] {
			t.Errorf("duplicate function %s", f.Name)
		}
		seen[f.Name] = true
		if got, ok := LookupFunction(f.Name); !ok || got.Name != f.Name {
			t.Errorf("LookupFunction(%s) = %v, %v", f.Name, got, ok)
		}
		if _, err := os.Stat(functionsRoot + "/" + f.SourceDir + "/" + f.Source); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	want := map[string]string{
		"go-static": "coldbench.local/fn-go:v1",
		"c-static":  "coldbench.local/fn-c:v1",
		"pause":     "coldbench.local/pause:3.10",
	}
	for n, ref := range want {
		if f, _ := LookupFunction(n); f.DefaultRef != ref {
			t.Errorf("%s: DefaultRef = %q, want %q", n, f.DefaultRef, ref)
		}
	}
	if _, ok := LookupFunction("nope"); ok {
		t.Error("LookupFunction(nope) found something")
	}
	if _, err := BuildFunction(context.Background(), "nope", functionsRoot, t.TempDir()); err == nil {
		t.Error("BuildFunction(nope) succeeded")
	}
	if _, err := BuildFunction(context.Background(), "pause", t.TempDir(), t.TempDir()); err == nil {
		t.Error("BuildFunction with no sources succeeded")
	}
}

// A function's own directory works as srcDir as well as the functions root.
func TestBuildFunctionFromOwnDir(t *testing.T) {
	requireTools(t, "cc")
	out := t.TempDir()
	p, err := BuildFunction(context.Background(), "pause", functionsRoot+"/pause", out)
	if err != nil {
		t.Fatal(err)
	}
	if p != out+"/pause" {
		t.Errorf("binary at %s", p)
	}
}

func TestFunctionImages(t *testing.T) {
	bins := builtFunctions(t)
	for _, f := range Functions {
		img, err := Build(f.Spec(bins[f.Name]))
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err) // also proves the binary is static
		}
		cf, _ := img.ConfigFile()
		wantEntry := "/fn/" + f.Name
		if f.Name == "pause" {
			wantEntry = "/pause"
		}
		wantUser := fmt.Sprintf("%d:%d", f.UID, f.UID)
		if !reflect.DeepEqual(cf.Config.Entrypoint, []string{wantEntry}) || cf.Config.User != wantUser || cf.Architecture != "amd64" {
			t.Errorf("%s: entrypoint %q user %q arch %s", f.Name, cf.Config.Entrypoint, cf.Config.User, cf.Architecture)
		}
		if f.Port != 0 {
			if _, ok := cf.Config.ExposedPorts[strconv.Itoa(f.Port)+"/tcp"]; !ok {
				t.Errorf("%s: ExposedPorts %v", f.Name, cf.Config.ExposedPorts)
			}
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait has returned
	err  error         // Wait's result, valid after done
}

// start runs bin and waits for a stderr line containing ready.
func start(t *testing.T, bin, ready string, env ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	isReady := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s: %s", filepath.Base(bin), sc.Text())
			if strings.Contains(sc.Text(), ready) {
				close(isReady)
				break
			}
		}
		// Wait must follow the last read of the pipe.
		io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-isReady:
	case <-p.done:
		t.Fatalf("%s exited before printing %q: %v", bin, ready, p.err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not print %q within 10s", bin, ready)
	}
	return p
}

// stop sends sig and requires a prompt exit with status 0.
func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("after %v: %v, want exit status 0", sig, p.err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no exit within 5s of %v", sig)
	}
}

func TestFunctionsServe(t *testing.T) {
	bins := builtFunctions(t)
	for _, tc := range []struct{ fn, body string }{
		{"go-static", "coldbench: hello from go-static\n"},
		{"c-static", "coldbench: hello from c-static\n"},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			port := freePort(t)
			launched := time.Now()
			p := start(t, bins[tc.fn], "listening on", "PORT="+strconv.Itoa(port))
			client := &http.Client{Timeout: 5 * time.Second}
			for _, path := range []string{"/", "/healthz", "/some/other/path?x=1"} {
				res, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					t.Fatalf("GET %s: reading body: %v", path, err)
				}
				if res.StatusCode != http.StatusOK || string(b) != tc.body {
					t.Errorf("GET %s: %d %q, want 200 %q", path, res.StatusCode, b, tc.body)
				}
				if res.ContentLength != int64(len(tc.body)) {
					t.Errorf("GET %s: Content-Length %d", path, res.ContentLength)
				}
				h := res.Header.Get("X-Coldbench-Process-Start")
				ns, err := strconv.ParseInt(h, 10, 64)
				if err != nil {
					t.Fatalf("GET %s: X-Coldbench-Process-Start %q: %v", path, h, err)
				}
				started := time.Unix(0, ns)
				if started.Before(launched.Add(-time.Second)) || started.After(time.Now()) || time.Since(started) > 5*time.Second {
					t.Errorf("GET %s: process start %v not between launch %v and now", path, started, launched)
				}
			}
			p.stop(t, syscall.SIGTERM)
		})
	}
}

func TestFunctionsDefaultPort(t *testing.T) {
	bins := builtFunctions(t)
	for _, fn := range []string{"go-static", "c-static"} {
		t.Run(fn, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "0.0.0.0:8080")
			if err != nil {
				t.Skipf("port 8080 busy: %v", err)
			}
			ln.Close()
			p := start(t, bins[fn], "listening on", "PORT=")
			res, err := http.Get("http://127.0.0.1:8080/")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			p.stop(t, syscall.SIGINT)
		})
	}
}

func TestPauseSignals(t *testing.T) {
	bins := builtFunctions(t)
	out, err := exec.Command(bins["pause"], "-v").Output()
	if err != nil || !strings.Contains(string(out), "pause") {
		t.Errorf("pause -v: %q, %v", out, err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		// The not-PID-1 warning comes after the handlers are installed.
		start(t, bins["pause"], "not PID 1").stop(t, sig)
	}
}
