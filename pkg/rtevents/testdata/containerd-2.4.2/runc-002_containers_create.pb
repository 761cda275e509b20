
•ÅÖØŞ±†ƒk8s.io/containers/create"Ì
!containerd.events.ContainerCreate¦
@0bfc5132bf81855b00c36693761261d015f84424c81ee05ba0e16b30d5bef2dacoldbench.local/pause:3.10F
io.containerd.runc.v2-
containerd.runc.v1.Options2/usr/bin/runc