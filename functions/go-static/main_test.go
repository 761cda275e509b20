package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	h := handler("1234")
	for _, tc := range []struct{ method, path, wantBody string }{
		{http.MethodGet, "/", body},
		{http.MethodGet, "/healthz", body},
		{http.MethodPost, "/invoke", body},
		{http.MethodHead, "/", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		res := rec.Result()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %d", tc.method, tc.path, res.StatusCode)
		}
		if string(b) != tc.wantBody {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, b, tc.wantBody)
		}
		if got := res.Header.Get(startHeader); got != "1234" {
			t.Errorf("%s %s: %s = %q", tc.method, tc.path, startHeader, got)
		}
	}
}

func TestProcessStartIsEarly(t *testing.T) {
	if processStart.IsZero() || time.Since(processStart) < 0 {
		t.Fatal("processStart not initialised")
	}
}
