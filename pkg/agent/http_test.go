package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// get GETs path from srv and returns the status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	res, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// The body of GET /v1/events, whole: what coldbench decodes.
func TestEventsJSON(t *testing.T) {
	f := newFakeContainerd(t)
	clk := newClock()
	a := runAgent(t, f, Config{MaxEvents: 100, MaxAge: time.Minute, now: clk.now})
	p := ourPod("a")
	f.store(p, false)
	f.publish(t, lifecycle(t, p, t0.Add(-time.Second))...)
	eventually(t, "the pod held", func() bool { return a.window.Len() == 6 })
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	code, body := get(t, srv, "/v1/events?uid=uid-a&uid=uid-x&uid=uid-a")
	const want = `{
	  "node_time_unix_ns": 1796580000000000000,
	  "agent": {
	    "containerd_namespace": "k8s.io",
	    "started_unix_ns": 1796580000000000000,
	    "subscription": {"healthy": true, "since_unix_ns": 1796580000000000000, "losses": 0},
	    "window": {"max_events": 100, "max_age_ns": 60000000000, "events": 6, "pods": 1, "evicted_events": 0},
	    "undecodable_events": 0,
	    "unclassified_events": 0
	  },
	  "pods": [{
	    "uid": "uid-a", "namespace": "coldbench", "name": "fn-a-deployment-abc",
	    "sandboxes": [{"id": "sb-a", "created_unix_ns": 1796579999000000007, "started_unix_ns": 1796579999001000007}],
	    "containers": {
	      "queue-proxy": [{"id": "qp-a", "sandbox_id": "sb-a", "created_unix_ns": 1796579999004000007, "started_unix_ns": 1796579999005000007}],
	      "user-container": [{"id": "uc-a", "sandbox_id": "sb-a", "created_unix_ns": 1796579999002000007, "started_unix_ns": 1796579999003000007}]
	    }
	  }],
	  "unknown": ["uid-x"]
	}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(want)); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || strings.TrimSpace(body) != compact.String() {
		t.Errorf("GET /v1/events: %d\n%s\nwant\n%s", code, body, compact.String())
	}
}

// /healthz follows the subscription: 503 with containerd's reason when the
// stream is lost, 200 again once the agent subscribed anew, which the
// state counts; the same when containerd goes away altogether and comes
// back. The events held survive the losses.
func TestHealthzFollowsTheSubscription(t *testing.T) {
	f := newFakeContainerd(t)
	// A second between subscriptions: long enough for the test to see
	// each loss on /healthz before the next subscription.
	a := runAgent(t, f, Config{RetryMin: time.Second, RetryMax: time.Second})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	p := ourPod("a")
	f.store(p, false)
	f.publish(t, lifecycle(t, p, time.Now())...)
	eventually(t, "the pod held", func() bool { return a.window.Len() == 6 })
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || !strings.HasPrefix(body, "ok: subscribed to containerd's events in namespace k8s.io since ") {
		t.Fatalf("healthz %d %q", code, body)
	}

	healthz := func(wantCode int, wantBody string) {
		t.Helper()
		var code int
		var body string
		eventually(t, "healthz "+wantBody, func() bool {
			code, body = get(t, srv, "/healthz")
			return code == wantCode && strings.Contains(body, wantBody)
		})
	}
	f.endStream(t, status.Error(codes.Unavailable, "containerd is shutting down"))
	healthz(http.StatusServiceUnavailable, "not subscribed to containerd's events: containerd event stream lost: rpc error: code = Unavailable desc = containerd is shutting down")
	f.waitSubscribed(t)
	healthz(http.StatusOK, "ok: ")
	st := a.State()
	if st.Subscription.Losses != 1 || !strings.Contains(st.Subscription.LastLossReason, "shutting down") || st.Subscription.SinceUnixNS == 0 {
		t.Errorf("subscription %+v", st.Subscription)
	}

	f.stop()
	healthz(http.StatusServiceUnavailable, "not subscribed")
	f.start(t)
	f.waitSubscribed(t)
	healthz(http.StatusOK, "ok: ")
	if st := a.State(); st.Subscription.Losses < 2 || st.Window.Events != 6 {
		t.Errorf("after containerd came back: %+v", st)
	}
}

// Malformed requests are refused; only GET (and HEAD) are served; without
// uid every pod held is answered.
func TestRequests(t *testing.T) {
	f := newFakeContainerd(t)
	a := runAgent(t, f, Config{})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	many := url.Values{"uid": make([]string, MaxUIDs+1)}
	for i := range many["uid"] {
		many["uid"][i] = "u"
	}
	for path, want := range map[string]int{
		"/v1/events?uid=": http.StatusBadRequest,
		"/v1/events?uid=" + strings.Repeat("x", 129): http.StatusBadRequest,
		"/v1/events?" + many.Encode():                http.StatusBadRequest,
		"/v1/events":                                 http.StatusOK,
		"/v1/events?uid=a":                           http.StatusOK,
		"/v1/nothing":                                http.StatusNotFound,
	} {
		if code, body := get(t, srv, path); code != want {
			t.Errorf("GET %.60s: %d %q, want %d", path, code, body, want)
		}
	}
	res, err := srv.Client().Post(srv.URL+"/v1/events", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", res.StatusCode)
	}
	_, body := get(t, srv, "/v1/events")
	var resp EventsResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Pods == nil || len(resp.Pods) != 0 || resp.NodeTimeUnixNS == 0 {
		t.Errorf("no pods: %v %s", err, body)
	}
}
