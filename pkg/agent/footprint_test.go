package agent

import "testing"

// A sandbox's cgroupsPath, as containerd's CRI writes it for either
// cgroup driver, gives its pod cgroup.
func TestPodCgroupOf(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/kubepods/besteffort/pod1b2c/0123abcd", "/kubepods/besteffort/pod1b2c"},
		{"/kubepods/pod1b2c/0123abcd", "/kubepods/pod1b2c"},
		{"kubepods-besteffort-pod1b2c_3d.slice:cri-containerd:0123abcd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1b2c_3d.slice"},
		{"kubepods-pod1b2c.slice:cri-containerd:0123abcd", "/kubepods.slice/kubepods-pod1b2c.slice"},
	} {
		got, err := podCgroupOf(c.in)
		if err != nil || got != c.want {
			t.Errorf("podCgroupOf(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "kubepods", "kubepods.scope:cri-containerd:0123"} {
		if got, err := podCgroupOf(bad); err == nil {
			t.Errorf("podCgroupOf(%q) = %q, want an error", bad, got)
		}
	}
}
