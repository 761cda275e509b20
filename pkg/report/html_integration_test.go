package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coldbench/coldbench/internal/testenv"
	"github.com/coldbench/coldbench/pkg/report"
	"github.com/coldbench/coldbench/pkg/results"
)

// labRecords is the real lab (Knative) run the plot tests use too.
const labRecords = "../../testdata/lab/knative-runc-crun-n1-5-10.jsonl"

// requestLog is a stand-in HTTP proxy: every connection Chromium opens
// through it is recorded by its request line and answered with an error, so
// a page that tries to load anything from the network shows up here.
type requestLog struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string
}

func newRequestLog(t *testing.T) *requestLog {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &requestLog{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l
}

func (l *requestLog) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if line = strings.TrimSpace(line); line == "" && err != nil {
		return
	}
	l.mu.Lock()
	l.seen = append(l.seen, line)
	l.mu.Unlock()
	if strings.HasPrefix(line, "CONNECT ") {
		fmt.Fprint(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	// A complete response, so the page's Resource Timing records the load.
	fmt.Fprint(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// browserOwn matches the requests Chromium makes on its own even with
// background networking disabled (component updater, account check,
// optimization guide), which no page of ours could issue in this form (the
// page's Resource Timing would list them too). Everything else counts.
var browserOwn = regexp.MustCompile(`^(CONNECT (update\.googleapis\.com|accounts\.google\.com|optimizationguide-pa\.googleapis\.com):443 |` +
	`POST http://update\.googleapis\.com/service/update2/json\?|GET http://clients2\.google\.com/time/1/current\?)`)

func (l *requestLog) pageRequests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.seen {
		if !browserOwn.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

func (l *requestLog) reset() {
	l.mu.Lock()
	l.seen = nil
	l.mu.Unlock()
}

// chromium finds Debian's chromium: skipped when missing on a developer's
// machine, a failure in CI (CI=true), where scripts/test-deps.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.InCI() {
		t.Fatal("prerequisite missing in CI: chromium on PATH (scripts/test-deps.sh installs it)")
	}
	t.Skip("prerequisite missing: chromium on PATH (run scripts/test-deps.sh)")
	return ""
}

type browser struct {
	t       *testing.T
	bin     string
	proxy   *requestLog
	profile int
}

// run starts a fresh headless Chromium (own profile, all traffic through
// the request log, no DNS) on page with extra arguments and returns stdout.
func (b *browser) run(page string, width, height int, extra ...string) []byte {
	t := b.t
	t.Helper()
	b.profile++
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + filepath.Join(t.TempDir(), fmt.Sprintf("profile-%d", b.profile)),
		"--proxy-server=http://" + b.proxy.ln.Addr().String(), "--proxy-bypass-list=<-loopback>",
		`--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
		"--force-device-scale-factor=1", "--hide-scrollbars", "--virtual-time-budget=5000",
		fmt.Sprintf("--window-size=%d,%d", width, height),
	}
	args = append(args, extra...)
	args = append(args, "file://"+page)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, args...)
	// Its own process group, so a hung browser is ended with all of its
	// helper processes, and only those.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of this run only
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 3000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// probeScript records, once the page has loaded, where each figure is, how
// tall the page is and which resources the page fetched.
const probeScript = `<script>
const figs = [...document.querySelectorAll("figure svg")].map(s => {
  const r = s.getBoundingClientRect();
  return [r.left + scrollX, r.top + scrollY, r.width, r.height];
});
document.body.setAttribute("data-probe", JSON.stringify({
  figs: figs,
  height: document.documentElement.scrollHeight,
  resources: performance.getEntriesByType("resource").map(e => e.name),
}));
</script>`

type probe struct {
	Figs      [][4]float64 `json:"figs"`
	Height    int          `json:"height"`
	Resources []string     `json:"resources"`
}

var probeAttr = regexp.MustCompile(`data-probe="([^"]*)"`)

// probePage writes page with the probe script added in dir and reads the
// probe back from Chromium's DOM dump.
func (b *browser) probePage(dir, name string, page []byte) probe {
	t := b.t
	t.Helper()
	withProbe := bytes.Replace(page, []byte("</body>"), []byte(probeScript+"</body>"), 1)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, withProbe, 0o644); err != nil {
		t.Fatal(err)
	}
	dom := b.run(path, 1280, 4000, "--dump-dom")
	m := probeAttr.FindSubmatch(dom)
	if m == nil {
		t.Fatalf("%s: no probe in the DOM dump (did the page load?):\n%s", name, tail(string(dom), 2000))
	}
	var p probe
	if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &p); err != nil {
		t.Fatalf("%s: probe: %v", name, err)
	}
	return p
}

// TestHTMLReportInChromium opens the HTML report of a real run in headless
// Chromium: it must load nothing from the network (seen neither by a
// recording proxy nor by the page's Resource Timing, and a control page
// proves both detectors see a request when there is one), and a screenshot
// of the whole page must show every figure drawn (ink and colour inside each
// figure's box).
func TestHTMLReportInChromium(t *testing.T) {
	testenv.Integration(t)
	b := &browser{t: t, bin: chromium(t), proxy: newRequestLog(t)}
	dir := t.TempDir()

	// Control: a page that does reach out is caught by both detectors.
	control := []byte(`<!DOCTYPE html><html><head><title>control</title></head><body><p>control</p>` +
		`<img src="http://coldbench-control.invalid/pixel.png" alt="">` +
		`<link rel="stylesheet" href="https://coldbench-control.invalid/style.css"></body></html>`)
	cp := b.probePage(dir, "control.html", control)
	if got := b.proxy.pageRequests(); len(got) == 0 {
		t.Fatalf("control page: the proxy saw no request; the network check cannot fail and proves nothing")
	}
	if !strings.Contains(strings.Join(cp.Resources, " "), "coldbench-control.invalid") {
		t.Fatalf("control page: Resource Timing does not list the image (%v); the network check proves nothing", cp.Resources)
	}
	b.proxy.reset()

	set, err := results.ReadFile(labRecords)
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := report.WriteHTML(&page, set, report.MetaFromSet(set, filepath.Base(labRecords)), report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	p := b.probePage(dir, "probe.html", page.Bytes())
	if len(p.Resources) != 0 {
		t.Errorf("the report fetched resources: %v", p.Resources)
	}
	if len(p.Figs) != 14 {
		t.Fatalf("%d figures laid out, want 14", len(p.Figs))
	}
	if p.Height < 1000 || p.Height > 30000 {
		t.Fatalf("page height %d px: implausible", p.Height)
	}

	reportPath := filepath.Join(dir, "report.html")
	if err := os.WriteFile(reportPath, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(dir, "report.png")
	b.run(reportPath, 1280, p.Height, "--screenshot="+shotPath)
	if got := b.proxy.pageRequests(); len(got) != 0 {
		t.Errorf("network requests while showing the report: %q", got)
	}

	f, err := os.Open(shotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != 1280 || got.Y != p.Height {
		t.Fatalf("screenshot is %v, want 1280x%d", got, p.Height)
	}
	for i, r := range p.Figs {
		box := image.Rect(int(r[0]), int(r[1]), int(r[0]+r[2]), int(r[1]+r[3])).Intersect(img.Bounds())
		if box.Dx() < 600 || box.Dy() < 300 {
			t.Errorf("figure %d: box %v too small to read", i, box)
			continue
		}
		ink, colour := pixelShares(img, box)
		if ink < 0.03 || colour < 0.005 {
			t.Errorf("figure %d at %v: %.4f of the pixels inked, %.4f coloured: not drawn", i, box, ink, colour)
		}
	}
	if t.Failed() || os.Getenv("COLDBENCH_KEEP_SCREENSHOT") != "" {
		kept := filepath.Join(os.TempDir(), "coldbench-report-screenshot.png")
		if b, err := os.ReadFile(shotPath); err == nil && os.WriteFile(kept, b, 0o644) == nil {
			t.Logf("screenshot kept at %s", kept)
		}
	}
}

// pixelShares returns the share of pixels in r that are not near-white and
// the share that are clearly coloured (not grey).
func pixelShares(img image.Image, r image.Rectangle) (ink, colour float64) {
	var nInk, nColour int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			r8, g8, b8 := int(cr>>8), int(cg>>8), int(cb>>8)
			if r8 < 235 || g8 < 235 || b8 < 235 {
				nInk++
			}
			if max(r8, g8, b8)-min(r8, g8, b8) > 60 {
				nColour++
			}
		}
	}
	total := float64(r.Dx() * r.Dy())
	return float64(nInk) / total, float64(nColour) / total
}
