package image

import (
	"context"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func newRegistry(t *testing.T, addr string, useTLS bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS handshake failures
	srv.Listener.Close()
	srv.Listener = ln
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

func pushCtx(t *testing.T) context.Context {
	t.Helper()
	// Isolate from the host's docker credentials.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPushRoundTrip(t *testing.T) {
	ctx := pushCtx(t)
	host := newRegistry(t, "127.0.0.1:0", false)
	img := testImages(t)["coldbench.local/fn-go:v1"]
	ref := host + "/coldbench/fn-go:v1"

	// Loopback registries are plain http even without insecure.
	if err := PushContext(ctx, ref, img, false); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	got, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if gd, wd := digestOf(t, got), digestOf(t, img); gd != wd {
		t.Errorf("pulled digest %s, pushed %s", gd, wd)
	}
	// Push (no context) too.
	if err := Push(host+"/coldbench/fn-go:v2", img, false); err != nil {
		t.Fatal(err)
	}
}

// 127.0.0.2 is loopback on Linux but not one of the names
// go-containerregistry trusts with plain http, so it shows what insecure does.
func TestPushInsecurePlainHTTP(t *testing.T) {
	ctx := pushCtx(t)
	host := newRegistry(t, "127.0.0.2:0", false)
	img := testImages(t)["coldbench.local/pause:3.10"]
	if err := PushContext(ctx, host+"/pause:3.10", img, false); err == nil {
		t.Error("secure push to a plain-http registry succeeded")
	}
	if err := PushContext(ctx, host+"/pause:3.10", img, true); err != nil {
		t.Errorf("insecure push: %v", err)
	}
}

func TestPushInsecureSelfSignedTLS(t *testing.T) {
	ctx := pushCtx(t)
	host := newRegistry(t, "127.0.0.1:0", true)
	img := testImages(t)["coldbench.local/pause:3.10"]
	err := PushContext(ctx, host+"/pause:3.10", img, false)
	if err == nil {
		t.Error("secure push to a self-signed registry succeeded")
	}
	if err := PushContext(ctx, host+"/pause:3.10", img, true); err != nil {
		t.Errorf("insecure push: %v", err)
	}
}

func TestPushBadRef(t *testing.T) {
	img := testImages(t)["coldbench.local/pause:3.10"]
	if err := Push("Not A Ref", img, true); err == nil || !strings.Contains(err.Error(), "invalid ref") {
		t.Errorf("err = %v", err)
	}
}
