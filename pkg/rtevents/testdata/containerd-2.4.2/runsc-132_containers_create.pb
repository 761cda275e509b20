
›ÅÖØìÑìık8s.io/containers/create"ö
!containerd.events.ContainerCreateĞ
@34da12ff21be74bc3aa26079f02004e5b3c86fbc8e01eff7ed2ede14091df068coldbench.local/fn-go:v1r
io.containerd.runsc.v1X
runtimeoptions.v1.Options;
io.containerd.runsc.v1.options/etc/coldbench/runsc.toml