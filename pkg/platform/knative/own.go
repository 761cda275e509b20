package knative

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/coldbench/coldbench/pkg/bench"
	"github.com/coldbench/coldbench/pkg/results"
)

// ErrForeign marks a ksvc that has the name coldbench wanted but was not
// created by this experiment: coldbench leaves it alone.
var ErrForeign = errors.New("not created by this experiment: left alone")

// owned reports whether labels mark an object as created by experiment id.
func owned(labels map[string]string, id string) bool {
	return labels[bench.LabelManagedBy] == bench.LabelManagedByVal && labels[bench.LabelExperiment] == id
}

// transient reports whether err is worth retrying: the API server (or a
// webhook it calls) is unreachable, restarting or overloaded, as opposed to a
// request it refused.
func transient(err error) bool {
	if err == nil {
		return false
	}
	return unreachable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || // overloaded: API Priority and Fairness refused it for now
		apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}

// createService creates svc for experiment id. Creation is untimed, so an
// API server that is unreachable or restarting only delays it: transient
// errors are retried until ctx ends. A ksvc of the same name that already
// exists is taken only if this experiment made it (a retried request whose
// answer was lost); one being deleted (a leftover an interrupted session's
// clean-up removes) is waited for and created anew; anyone else's is an
// ErrForeign error and is never touched.
func createService(ctx context.Context, svcs dynamic.ResourceInterface, svc *unstructured.Unstructured, id string) error {
	name := svc.GetName()
	tries := 0
	var last, out error // last: the transient error retried after; out: the outcome
	stop := func(err error) (bool, error) { out = err; return true, nil }
	werr := createBackoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		for {
			tries++
			_, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				cur, gerr := svcs.Get(ctx, name, metav1.GetOptions{})
				switch {
				case gerr == nil && !owned(cur.GetLabels(), id):
					return stop(fmt.Errorf("a ksvc named %q already exists in namespace %q: %w", name, svc.GetNamespace(), ErrForeign))
				case gerr == nil && cur.GetDeletionTimestamp() == nil:
					return stop(nil) // ours
				case gerr == nil:
					err = fmt.Errorf("ksvc %q of this experiment is still being deleted", name)
				case objectGone(gerr, name):
					continue // gone meanwhile: create again at once
				case transient(gerr) || apierrors.IsNotFound(gerr): // a 404 naming nothing: see objectGone
					err = gerr
				default:
					return stop(gerr)
				}
			} else if err == nil || !transient(err) {
				return stop(err)
			}
			last = err
			return false, nil
		}
	})
	if werr != nil { // the condition never fails: ctx ended while retrying
		return fmt.Errorf("%w (retried %d times until %v)", last, tries, werr)
	}
	return out
}

// createBackoff is createService's wait between tries: 100 ms, doubled up to
// 2 s, then 2 s for as long as ctx lives. Through DelayFunc, Steps only
// bounds the doublings (wait.ExponentialBackoffWithContext would stop at Cap).
var createBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: 2 * time.Second, Steps: math.MaxInt32}

// notReadyInTimeClass is the class of a ksvc not Ready within the readiness
// timeout: the ingress's when the networking layer never configured its
// route (it is down, or far behind), a timeout otherwise.
func notReadyInTimeClass(st serviceStatus) string {
	if containsAny(st.Reason+" "+st.Message, "IngressNotConfigured", "Ingress has not yet been reconciled") {
		return results.ErrIngress
	}
	return results.ErrTimeout
}
