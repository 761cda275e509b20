#!/usr/bin/env python3
"""Knative's autoscaler at work during a cell (docs/scale.md, issue 14).

usage: autoscaler-decisions.py --csv AUTOSCALER_LOG RELEASE_UTC > EVENTS.csv
       autoscaler-decisions.py EVENTS.csv [BUCKET_S]

AUTOSCALER_LOG is the autoscaler pod's container log as the kubelet wrote it
(lab: /var/log/coldbench/lab/pods/knative-serving_autoscaler-*/autoscaler/0.log,
gone with the pod), RELEASE_UTC the cell's first attempt start from the
records (RFC 3339). --csv keeps what the table needs, to commit beside the
records: seconds since the release, the event (reconcile: a KPA reconcile
finished, "Reconcile succeeded"; scale_from_zero: "Scaling from 0 to ..."),
and the reconcile's duration. The table: per bucket of time since the
release, the reconciles (count, median and max duration) and the
scale-from-zero decisions, then the quantiles of the decisions' times.
Only the standard library.
"""
import collections
import json
import re
import sys
from datetime import datetime, timezone


def unix(ts):
    ts = ts.rstrip("Z")
    whole, _, frac = ts.partition(".")
    return datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() + float("0." + (frac or "0"))


def seconds(d):
    m = re.fullmatch(r"([\d.]+)(ns|µs|us|ms|s|m)", d)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m.group(2)]


def extract(log, release):
    print("t_s,event,duration_s")
    for line in open(log, encoding="utf-8", errors="replace"):
        i = line.find("{")
        if i < 0:
            continue
        try:
            e = json.loads(line[i:])
        except ValueError:
            continue
        t = unix(e.get("timestamp", "1970-01-01T00:00:00Z")) - release
        msg = e.get("message", "")
        if msg.startswith("Scaling from 0 to"):
            print("%.3f,scale_from_zero," % t)
        elif msg == "Reconcile succeeded" and "kpa" in e.get("knative.dev/controller", ""):
            print("%.3f,reconcile,%.3f" % (t, seconds(e.get("duration", ""))))


def table(csv, bucket):
    decisions, reconciles = [], collections.defaultdict(list)
    for line in list(open(csv))[1:]:
        t, event, d = line.strip().split(",")
        t = float(t)
        if event == "scale_from_zero":
            decisions.append(t)
        else:
            reconciles[int(t // bucket)].append(float(d))
    per = collections.Counter(int(t // bucket) for t in decisions)
    print("# since release (s)  KPA reconciles  median (s)  max (s)  scale-from-zero decisions")
    for k in sorted(set(reconciles) | set(per)):
        if k < 0:
            continue
        d = sorted(reconciles.get(k, []))
        med = d[len(d) // 2] if d else float("nan")
        print("%6d-%-6d %14d %11.2f %8.2f %10d" % (k * bucket, (k + 1) * bucket, len(d), med, d[-1] if d else float("nan"), per.get(k, 0)))
    decisions = sorted(t for t in decisions if t >= 0)
    if decisions:
        q = lambda p: decisions[min(len(decisions) - 1, int(p * len(decisions)))]
        print("# %d scale-from-zero decisions after the release; 25/50/75/100 %%: %.1f / %.1f / %.1f / %.1f s"
              % (len(decisions), q(0.25), q(0.5), q(0.75), decisions[-1]))


def main():
    if sys.argv[1] == "--csv":
        extract(sys.argv[2], unix(sys.argv[3]))
    else:
        table(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 20.0)


if __name__ == "__main__":
    main()
