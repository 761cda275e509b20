
•ÅÖØ¬ğÑàk8s.io/containers/create"Ê
!containerd.events.ContainerCreate¤
@b3e72b75828fcaa5b6749053abbe4fd753e990ebc7baae2821eb8a73545f0bb6coldbench.local/fn-go:v1F
io.containerd.runc.v2-
containerd.runc.v1.Options2/usr/bin/runc