package agent

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the YAML documents of a file of deploy/, by kind.
func manifests(t *testing.T, name string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]string{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("deploy/%s: %v", name, err)
		}
		if head.Kind != "" {
			docs[head.Kind] = append(docs[head.Kind], doc)
		}
	}
	return docs
}

// decode decodes the one document of kind into v, strictly (a misspelt
// field is an error, not a setting silently dropped).
func decode(t *testing.T, docs map[string][]string, kind string, v any) {
	t.Helper()
	if len(docs[kind]) != 1 {
		t.Fatalf("%d %s documents, want 1", len(docs[kind]), kind)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[kind][0]), v); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
}

// deploy/agent.yaml is least privilege: a ServiceAccount with no token and
// no rights, and a DaemonSet on every node with no host namespace but the
// PID one (a cgroup's cgroup.procs lists only the reader's namespace's), no
// privilege, one capability (SYS_PTRACE: reading the PSS of the host's
// root processes takes it, and only root keeps it across exec), a
// read-only root, and of the host only containerd's socket (a hostPath
// that must be a socket), /proc and /sys/fs/cgroup, all mounted read-only.
func TestAgentManifestLeastPrivilege(t *testing.T) {
	docs := manifests(t, "agent.yaml")
	for kind := range docs {
		if kind != "ServiceAccount" && kind != "DaemonSet" {
			t.Errorf("deploy/agent.yaml holds a %s: only the ServiceAccount and the DaemonSet belong there", kind)
		}
	}
	var sa corev1.ServiceAccount
	decode(t, docs, "ServiceAccount", &sa)
	var ds appsv1.DaemonSet
	decode(t, docs, "DaemonSet", &ds)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount mounts its token")
	}
	pod := ds.Spec.Template.Spec
	if ds.Namespace != "coldbench-system" || sa.Namespace != ds.Namespace || pod.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet %s/%s runs as %s; ServiceAccount %s/%s", ds.Namespace, ds.Name, pod.ServiceAccountName, sa.Namespace, sa.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a token")
	}
	if pod.HostNetwork || !pod.HostPID || pod.HostIPC {
		t.Errorf("host namespaces: network %v pid %v ipc %v: want the PID one only", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || len(psc.SupplementalGroups) != 0 {
		t.Errorf("pod securityContext %+v: want seccomp RuntimeDefault, no supplemental group", psc)
	}
	wantHost := map[string]corev1.HostPathType{DefaultSocket: corev1.HostPathSocket, "/proc": corev1.HostPathDirectory, "/sys/fs/cgroup": corev1.HostPathDirectory}
	hostOf := map[string]string{} // volume name → host path
	for _, v := range pod.Volumes {
		if v.HostPath == nil || v.HostPath.Type == nil || wantHost[v.HostPath.Path] == "" || *v.HostPath.Type != wantHost[v.HostPath.Path] {
			t.Errorf("volume %+v: want only hostPaths %v, each of its type", v, wantHost)
			continue
		}
		hostOf[v.Name] = v.HostPath.Path
	}
	if len(hostOf) != len(wantHost) {
		t.Fatalf("volumes %+v: want %d host paths %v", pod.Volumes, len(wantHost), wantHost)
	}
	if len(pod.InitContainers) != 0 || len(pod.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers: want one container", len(pod.InitContainers), len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || (sc.Privileged != nil && *sc.Privileged) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"SYS_PTRACE"}) {
		t.Errorf("container securityContext %+v: want unprivileged, no escalation, read-only root, every capability dropped but SYS_PTRACE", sc)
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 || p.HostIP != "" {
			t.Errorf("port %+v opens the node's network", p)
		}
	}
	if len(c.VolumeMounts) != len(hostOf) {
		t.Errorf("mounts %+v: want each host path once", c.VolumeMounts)
	}
	for _, m := range c.VolumeMounts {
		host, ok := hostOf[m.Name]
		want := "/host" + host
		if host == DefaultSocket {
			want = DefaultSocket
		}
		if !ok || !m.ReadOnly || m.MountPath != want {
			t.Errorf("mount %+v: want host path %q read-only at %s", m, host, want)
		}
	}
}

// The DaemonSet runs on every node, is found by its label (which is not
// the one marking what a study creates), and runs the agent as its flags
// want it: on the pod's IP, on the port declared and probed, with the
// socket mounted.
func TestAgentManifestRunsTheAgent(t *testing.T) {
	var ds appsv1.DaemonSet
	decode(t, manifests(t, "agent.yaml"), "DaemonSet", &ds)
	pod := ds.Spec.Template.Spec
	if !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
	}) {
		t.Errorf("tolerations %+v: want every taint tolerated", pod.Tolerations)
	}
	labels := ds.Spec.Template.Labels
	if labels["app.kubernetes.io/name"] != "coldbench-agent" || ds.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "coldbench-agent" {
		t.Errorf("labels %v, selector %v", labels, ds.Spec.Selector.MatchLabels)
	}
	if _, ok := labels[LabelManagedBy]; ok {
		t.Errorf("the agent's pods carry %s: they would count as a study's", LabelManagedBy)
	}
	c := pod.Containers[0]
	if c.Image != "coldbench.local/coldbench-agent:v1" || c.Command != nil {
		t.Errorf("image %s, command %q: want the image builder's coldbench-agent and its entrypoint", c.Image, c.Command)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "POD_IP" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef == nil ||
		c.Env[0].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("env %+v: want POD_IP from status.podIP", c.Env)
	}
	args := strings.ReplaceAll(strings.Join(c.Args, "\n"), "$(POD_IP)", "10.0.0.7")
	o, err := parseFlags(strings.Split(args, "\n"), io.Discard)
	if err != nil {
		t.Fatalf("args %q: %v", c.Args, err)
	}
	if o.ip != "10.0.0.7" || o.socket != DefaultSocket || o.cfg.Namespace != DefaultNamespace || o.cfg.HostRoot != "/host" {
		t.Errorf("args %q: ip %s, socket %s, namespace %s, host root %s", c.Args, o.ip, o.socket, o.cfg.Namespace, o.cfg.HostRoot)
	}
	if len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != o.port || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil ||
		c.ReadinessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Port.String() != c.Ports[0].Name {
		t.Errorf("ports %+v, readiness %+v: want the agent's port (%d), probed on /healthz", c.Ports, c.ReadinessProbe, o.port)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v: want a memory limit and requests", c.Resources)
	}
}

// deploy/rbac.yaml gives coldbench's ServiceAccount what finding and
// reading the agents takes, in the agents' namespace only (list pods, GET
// through the pod proxy), and gives the agent's ServiceAccount nothing.
func TestRBACForTheAgent(t *testing.T) {
	docs := manifests(t, "rbac.yaml")
	var agentNS *corev1.Namespace
	for _, doc := range docs["Namespace"] {
		var ns corev1.Namespace
		if err := yaml.UnmarshalStrict([]byte(doc), &ns); err != nil {
			t.Fatal(err)
		}
		if ns.Name == "coldbench-system" {
			agentNS = &ns
		}
	}
	if agentNS == nil || agentNS.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace coldbench-system %+v: want it, at Pod Security level privileged (the DaemonSet's hostPath)", agentNS)
	}
	var rules []rbacv1.PolicyRule
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, doc := range docs[kind] {
			var r rbacv1.Role // a ClusterRole's fields are a Role's
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				if slices.ContainsFunc(rule.Resources, func(res string) bool { return strings.Contains(res, "/") }) && r.Namespace != "coldbench-system" {
					t.Errorf("%s %s/%s grants a subresource %v", kind, r.Namespace, r.Name, rule.Resources)
				}
			}
			if r.Namespace == "coldbench-system" {
				rules = append(rules, r.Rules...)
			}
		}
	}
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/proxy"}, Verbs: []string{"get"}}}
	if len(rules) != len(want) || !slices.EqualFunc(rules, want, func(a, b rbacv1.PolicyRule) bool {
		return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs) && len(a.ResourceNames) == 0
	}) {
		t.Errorf("rules in coldbench-system %+v, want exactly %+v", rules, want)
	}
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, doc := range docs[kind] {
			var b rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Subjects {
				if s.Name != "coldbench" || s.Namespace != "coldbench" {
					t.Errorf("%s %s/%s binds %s %s/%s: only coldbench's own ServiceAccount has rights", kind, b.Namespace, b.Name, s.Kind, s.Namespace, s.Name)
				}
			}
		}
	}
}

// deploy/rbac-kubelet-summary.yaml, the optional grant of the kubelets'
// Summary API, grants get on nodes/proxy and nothing else, to coldbench's
// own ServiceAccount only.
func TestRBACForTheKubeletSummary(t *testing.T) {
	docs := manifests(t, "rbac-kubelet-summary.yaml")
	if len(docs["ClusterRole"]) != 1 || len(docs["ClusterRoleBinding"]) != 1 || len(docs) != 2 {
		t.Fatalf("documents %v: want one ClusterRole and its binding", docs)
	}
	var r rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(docs["ClusterRole"][0]), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Rules) != 1 || !slices.Equal(r.Rules[0].APIGroups, []string{""}) || !slices.Equal(r.Rules[0].Resources, []string{"nodes/proxy"}) ||
		!slices.Equal(r.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("rules %+v: want get nodes/proxy only", r.Rules)
	}
	var b rbacv1.ClusterRoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs["ClusterRoleBinding"][0]), &b); err != nil {
		t.Fatal(err)
	}
	if b.RoleRef.Name != r.Name || len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != "coldbench" || b.Subjects[0].Namespace != "coldbench" {
		t.Errorf("binding %+v: want %s to coldbench/coldbench only", b, r.Name)
	}
}
