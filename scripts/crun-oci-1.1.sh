#!/bin/sh
# OCI runtime wrapper for crun 1.8.1 (Debian 12) under containerd 2.x.
# containerd 2.x writes OCI runtime-spec version 1.3.0 for every container,
# the pod sandbox (pause) included, whose spec base_runtime_spec cannot reach;
# crun 1.8.1 refuses any ociVersion above 1.1 ("unknown version specified").
# For create/run (the only calls that pass --bundle) this lowers the bundle's
# ociVersion to 1.1.0, then execs crun with the same arguments. Fields newer
# than 1.1 are ignored by crun 1.8.1 as they would be anyway. Configured as
# the crun runtime's BinaryName; CRUN overrides the real binary.
b=
prev=
for a in "$@"; do
  case $prev in --bundle | -b) b=$a ;; esac
  case $a in --bundle=*) b=${a#--bundle=} ;; esac
  prev=$a
done
if [ -n "$b" ] && [ -f "$b/config.json" ]; then
  sed -i -E 's/"ociVersion": ?"1\.([2-9]|[1-9][0-9])\.[^"]*"/"ociVersion":"1.1.0"/' "$b/config.json"
fi
exec "${CRUN:-/usr/bin/crun}" "$@"
