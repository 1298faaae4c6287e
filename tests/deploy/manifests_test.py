#!/usr/bin/env python3
"""The deployment files agree with each other and with the binary:
deploy/k8s parses as Kubernetes objects whose probes, ports, config keys and
grace period fit `cloud serve`, every flag they pass is one `cloud serve
--help` knows, and the nginx template keeps streams alive longer than a
replica's idle timeout.
  manifests_test.py SPECSTEER_BIN SOURCE_DIR
"""
import re
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:
    print("manifests_test: PyYAML missing (bash tools/deps.sh --test)")
    sys.exit(1)

bin_path, src = sys.argv[1], Path(sys.argv[2])
k8s = src / "deploy" / "k8s"
objs = {}
for f in sorted(k8s.glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        assert doc and "kind" in doc and "apiVersion" in doc, f"{f}: not a Kubernetes object"
        objs[doc["kind"]] = doc
assert set(objs) == {"ConfigMap", "Deployment", "Service"}, sorted(objs)

cm, dep, svc = objs["ConfigMap"], objs["Deployment"], objs["Service"]
pod = dep["spec"]["template"]
c = pod["spec"]["containers"][0]
args = c["args"]
assert args[:2] == ["cloud", "serve"], args
flags = {a.split("=", 1)[0]: (a.split("=", 1)[1] if "=" in a else None) for a in args[2:]}

# Every $(VAR) comes from the ConfigMap the container reads.
assert any(e.get("configMapRef", {}).get("name") == cm["metadata"]["name"] for e in c.get("envFrom", []))
for a in args:
    for var in re.findall(r"\$\((\w+)\)", a):
        assert var in cm["data"], f"{a}: {var} is not in the ConfigMap"

# The flags exist in this binary's `cloud serve`.
help_text = subprocess.run([bin_path, "cloud", "serve", "--help"], capture_output=True, text=True).stdout
for flag in flags:
    assert re.search(re.escape(flag) + r"\b", help_text), f"`cloud serve` has no {flag}"

ports = {p["name"]: p["containerPort"] for p in c["ports"]}
assert flags["--listen"].endswith(f":{ports['grpc']}"), flags["--listen"]
assert flags["--metrics-listen"].endswith(f":{ports['metrics']}"), flags["--metrics-listen"]
for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
    assert c[probe]["grpc"]["port"] == ports["grpc"], f"{probe} is not the gRPC health check on the serving port"
ann = pod["metadata"]["annotations"]
assert ann["prometheus.io/port"] == str(ports["metrics"]) and ann["prometheus.io/path"] == "/metrics"
assert int(pod["spec"]["terminationGracePeriodSeconds"]) > float(cm["data"]["SHUTDOWN_GRACE_S"]), \
    "Kubernetes would kill a replica before its drain's grace ends"
assert dep["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]

assert svc["spec"]["clusterIP"] == "None", "client-side balancing needs a headless Service"
assert svc["spec"]["selector"] == pod["metadata"]["labels"]
assert any(p["targetPort"] == "grpc" for p in svc["spec"]["ports"])

conf = (src / "deploy" / "nginx" / "specsteer-cloud.conf.in").read_text()
for needle in ("grpc_pass grpc://specsteer_cloud", "@SERVERS@", "@LISTEN@", "client_max_body_size 0"):
    assert needle in conf, needle
idle = re.search(r"--idle-timeout\s+\w+=(\d+)", help_text)
assert idle, "cloud serve --help shows no --idle-timeout default"
idle_s = float(idle.group(1)) if idle else 300.0
for directive in ("grpc_read_timeout", "grpc_send_timeout", "client_body_timeout"):
    m = re.search(directive + r"\s+(\d+)s;", conf)
    assert m and float(m.group(1)) > idle_s, f"{directive} must exceed the replicas' idle timeout ({idle_s} s)"
print("deploy files: ok")
