package knative

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/coldbench/coldbench/internal/testenv/globallog"
	"github.com/coldbench/coldbench/pkg/bench"
)

// The platform logs through the logger it is given (here: creating the
// namespace), and the process-wide logger gets no line.
func TestPlatformLogsOnlyThroughItsLogger(t *testing.T) {
	_, global := globallog.Capture(t)
	var buf bytes.Buffer
	exp := bench.Default()
	exp.Spec.SetSection(Name, &Spec{Namespace: "absent"})
	p := NewWithClients(exp, fake.NewClientset(), nil, "", slog.New(slog.NewTextHandler(&buf, nil)))
	if err := p.ensureNamespace(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `level=INFO msg="created namespace" namespace=absent`) {
		t.Errorf("the platform's logger lacks the namespace line:\n%s", &buf)
	}
	if global.Len() > 0 {
		t.Errorf("the platform logged through slog.Default:\n%s", global)
	}
}
