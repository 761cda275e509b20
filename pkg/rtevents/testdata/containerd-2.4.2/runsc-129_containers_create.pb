
›ÅÖØãÕ²yk8s.io/containers/create"ø
!containerd.events.ContainerCreateÒ
@6819301b1a2facc8eadd618332d832e528b58cc0f068c432423efaa8425599d9coldbench.local/pause:3.10r
io.containerd.runsc.v1X
runtimeoptions.v1.Options;
io.containerd.runsc.v1.options/etc/coldbench/runsc.toml