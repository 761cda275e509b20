package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push uploads img to ref (e.g. "registry.example:5000/fn-go:v1") using the
// docker config keychain for credentials.
//
// insecure behaves like crane's --insecure: plain http is allowed (after an
// https attempt) and TLS certificates are not verified. Loopback registries
// (localhost, 127.0.0.1, ::1) may use plain http regardless.
func Push(ref string, img v1.Image, insecure bool) error {
	return PushContext(context.Background(), ref, img, insecure)
}

// PushContext is Push with a context bounding the upload.
func PushContext(ctx context.Context, ref string, img v1.Image, insecure bool) error {
	var nameOpts []name.Option
	remoteOpts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
	}
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
		base, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			base = http.DefaultTransport.(*http.Transport)
		}
		tr := base.Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicitly requested
		remoteOpts = append(remoteOpts, remote.WithTransport(tr))
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return fmt.Errorf("image: invalid ref %q: %w", ref, err)
	}
	if err := remote.Write(r, img, remoteOpts...); err != nil {
		return fmt.Errorf("image: push %s: %w", ref, err)
	}
	return nil
}
