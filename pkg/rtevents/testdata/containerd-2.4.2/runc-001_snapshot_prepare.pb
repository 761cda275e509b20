
ï≈÷ÿÀ±¿Çk8s.io/snapshot/prepare"º
!containerd.events.SnapshotPrepareñ
@0bfc5132bf81855b00c36693761261d015f84424c81ee05ba0e16b30d5bef2daGsha256:747781bb277d14db40ce7171558a46b90e4ffddea5c7a1d62aa41ca02d1b0f31*	overlayfs