"""Runs what `helm template` renders as local processes, the way a kubelet would run the pods:
each workload's command, args and env (fieldRef, secretKeyRef and $(VAR) expansion), its
volumes as folders, the Services' and pods' DNS names and container ports mapped to ports on
127.0.0.1. Image binaries are mapped to local ones (the strata build, Debian's etcd)."""

import base64
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

DNS = re.compile(r"\b([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.svc\.cluster\.local):(\d+)")
POD_IP = re.compile(r"\b(10\.244\.\d+\.\d+):(\d+)")
VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pod:
    def __init__(self, cluster, workload, index):
        self.cluster, self.workload = cluster, workload
        kind, name = workload["kind"], workload["metadata"]["name"]
        self.name = f"{name}-{index}"
        self.spec = workload["spec"]["template"]["spec"]
        self.container = self.spec["containers"][0]
        self.ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        self.host_ports = {p: free_port() for p in self.ports.values()}
        claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
        self.claims = claims if kind == "StatefulSet" else set()
        self.proc = None
        self.ip = cluster.pod_ip(self.name)

    # --- what the kubelet resolves ---------------------------------------------------------------

    def folders(self, files=True):
        """mountPath -> local folder, longest first; `files`: with ConfigMaps and Secrets."""
        out = {}
        vols = {v["name"]: v for v in self.spec.get("volumes", [])}
        for m in self.container.get("volumeMounts", []):
            v = vols.get(m["name"])
            if files or not (v and ("configMap" in v or "secret" in v)):
                out[m["mountPath"]] = self.cluster.volume(self, m["name"], v)
        return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))

    def local_paths(self, text, folders):
        for mount_path, folder in folders.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(mount_path)}(?=/|\b|$)", str(folder), text)
        return text

    def addresses(self, text):
        text = re.sub(r"0\.0\.0\.0:(\d+)", lambda m: f"127.0.0.1:{self.host_ports[int(m.group(1))]}", text)
        text = POD_IP.sub(lambda m: f"127.0.0.1:{self.cluster.by_ip(m.group(1)).host_ports[int(m.group(2))]}", text)
        return DNS.sub(lambda m: f"127.0.0.1:{self.cluster.resolve(m.group(1), int(m.group(5)))}", text)

    def env(self):
        env = {}
        for e in self.container.get("env", []):
            if "value" in e:
                v = VAR.sub(lambda m: env.get(m.group(1), m.group(0)), e["value"])
            else:
                src = e["valueFrom"]
                if "fieldRef" in src:
                    v = {"metadata.name": self.name, "status.podIP": self.ip}[src["fieldRef"]["fieldPath"]]
                else:
                    ref = src["secretKeyRef"]
                    v = self.cluster.secrets[ref["name"]][ref["key"]]
            env[e["name"]] = v
        return env

    def command(self, folders):
        env = self.env()
        expand = lambda s: VAR.sub(lambda m: env.get(m.group(1), m.group(0)), s)  # noqa: E731
        argv = [expand(a) for a in self.container["command"] + self.container.get("args", [])]
        binary = self.cluster.binaries.get(argv[0])
        argv = [self.addresses(self.local_paths(a, folders)) for a in argv]
        # A host binary's path is not the pod's: under /tmp, it would be mapped to the pod's /tmp.
        argv[0] = binary or argv[0]
        env = {k: self.cluster.binaries.get(v, self.addresses(self.local_paths(v, folders))) for k, v in env.items()}
        return argv, env

    # --- its life ---------------------------------------------------------------------------------

    def start(self):
        folders = self.folders()
        argv, env = self.command(folders)
        log = open(self.cluster.root / f"{self.name}.log", "ab")
        base = {"PATH": os.environ["PATH"], "HOME": str(self.cluster.root), "RUST_BACKTRACE": "0"}
        self.proc = subprocess.Popen(argv, env={**base, **env}, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.cluster.root, start_new_session=True)
        return self

    def url(self, port_name="http"):
        return f"http://127.0.0.1:{self.host_ports[self.ports[port_name]]}"

    def wait_ready(self, timeout=60):
        probe = self.container["readinessProbe"]["httpGet"]
        port = probe["port"] if isinstance(probe["port"], int) else self.ports[probe["port"]]
        url = f"http://127.0.0.1:{self.host_ports[port]}{probe['path']}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready at {url} after {timeout}s:\n{self.log()}")

    def log(self):
        return (self.cluster.root / f"{self.name}.log").read_text(errors="replace")[-3000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Cluster:
    """The objects of one release, as processes under `root`."""

    def __init__(self, root, docs, binaries, secrets=None):
        self.root, self.binaries = Path(root), binaries
        self.secrets = dict(secrets or {})
        self.pods = {}
        self.ips = {}
        self.apply(docs)

    def apply(self, docs):
        """Takes a rendering (an install or an upgrade): Secrets already there are kept, as
        `lookup` keeps them in a real cluster."""
        self.docs = docs
        for d in docs:
            if d["kind"] == "Secret" and d["metadata"]["name"] not in self.secrets:
                self.secrets[d["metadata"]["name"]] = {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        self.config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
        self.services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}

    def pod_ip(self, name):
        """A pod's IP, the same for its name (a DaemonSet's workers advertise it)."""
        return self.ips.setdefault(name, f"10.244.0.{len(self.ips) + 1}")

    def by_ip(self, ip):
        return next(p for p in self.pods.values() if p.ip == ip)

    def workload(self, kind, name):
        return next(d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name)

    def replicas(self, w):
        if "replicas" in w["spec"]:
            return w["spec"]["replicas"]
        hpa = [d for d in self.docs if d["kind"] == "HorizontalPodAutoscaler"
               and d["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]]
        return hpa[0]["spec"]["minReplicas"] if hpa else 1

    def start(self, kind, name, ready=True):
        """Starts (or, after `apply`, restarts with the new template) every pod of a workload."""
        w = self.workload(kind, name)
        pods = []
        # All of them first: members name each other (etcd's initial cluster, the masters' list).
        for i in range(self.replicas(w)):
            old = self.pods.get(f"{name}-{i}")
            if old:
                old.stop()
            pod = Pod(self, w, i)
            if old:
                pod.host_ports = old.host_ports  # the pod's name, and so its address, stays
            self.pods[pod.name] = pod
            pods.append(pod)
        for p in pods:
            p.start()
        if ready:
            for p in pods:
                p.wait_ready()
        return pods

    def run_job(self, name, timeout=90):
        job = self.workload("Job", name)
        pod = Pod(self, job, 0)
        argv, env = pod.command(pod.folders())
        base = {"PATH": os.environ["PATH"], "HOME": str(self.root), "RUST_BACKTRACE": "0"}
        return subprocess.run(argv, env={**base, **env}, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def exec(self, pod_name, *args, timeout=30):
        """`kubectl exec POD -- <the container's binary> ARGS`: the pod's env and files."""
        pod = self.pods[pod_name]
        argv, env = pod.command(pod.folders())
        base = {"PATH": os.environ["PATH"], "HOME": str(self.root), "RUST_BACKTRACE": "0"}
        return subprocess.run([argv[0], *args], env={**base, **env}, capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)

    def volume(self, pod, name, vol):
        if name in pod.claims:
            folder = self.root / "pvc" / f"{name}-{pod.name}"
        elif vol is None:
            raise AssertionError(f"{pod.name}: volume {name} is neither a volume nor a claim")
        elif "persistentVolumeClaim" in vol:
            folder = self.root / "pvc" / vol["persistentVolumeClaim"]["claimName"]
        elif "emptyDir" in vol:
            folder = self.root / "pods" / pod.name / name
        elif "hostPath" in vol:
            folder = self.root / "host" / vol["hostPath"]["path"].strip("/")
        elif "configMap" in vol or "secret" in vol:
            folder = self.root / "pods" / pod.name / name
            folder.mkdir(parents=True, exist_ok=True)
            data = (self.config_maps[vol["configMap"]["name"]] if "configMap" in vol
                    else self.secrets[vol["secret"]["secretName"]])
            for k, v in data.items():
                # The pod sees its own paths and the cluster's names: translate both.
                (folder / k).write_text(pod.addresses(pod.local_paths(v, pod.folders(files=False)))
                                        if "configMap" in vol else v)
            return folder
        else:
            raise AssertionError(f"{pod.name}: volume {name} of an unknown type: {vol}")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def resolve(self, host, port):
        """A pod's stable name or a Service's name, and a port, to a port on 127.0.0.1."""
        first = host.split(".")[0]
        if first in self.pods:
            return self.pods[first].host_ports[port]
        svc = self.services[first]
        target = next(p["targetPort"] for p in svc["spec"]["ports"] if p["port"] == port)
        for pod in self.pods.values():
            labels = pod.workload["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()) and pod.proc and pod.proc.poll() is None:
                return pod.host_ports[pod.ports[target] if isinstance(target, str) else target]
        raise AssertionError(f"no running pod behind {host}:{port}")

    def stop_all(self):
        for pod in reversed(list(self.pods.values())):
            pod.stop()

