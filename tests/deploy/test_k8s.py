"""deploy/k8s/**/*.yaml parse, pass the Kubernetes schemas, and carry what production needs: probes, resources, a grace
period longer than the server's shutdown delay + drain, non-root, read-only model volume; Locust master + workers +
Service; an HPA; the peak Job (deploy/k8s/peak) wired to its workers and to the server Service.

Schema check: kubernetes-validate (a dev dependency in the lock) ships the Kubernetes JSON schemas inside its wheel,
so the check runs without a cluster, without kubectl and without the network. The strict schemas are used: an
unknown (e.g. misspelled) field fails, as a wrong type or a missing required field does."""

from __future__ import annotations

import contextlib
import copy
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ._util import DEPLOY

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(K8S.rglob("*.yaml"))
# The oldest Kubernetes minor the manifests are for and the newest the installed schemas know: an API removed or a
# field renamed in between fails one of the two.
OLDEST_K8S = "1.27"
K8S_VERSIONS = (OLDEST_K8S, kubernetes_validate.latest_version())


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def schema_errors(doc: dict, version: str) -> list[str]:
    """What the strict Kubernetes schema of `version` says about one object ([] = valid). An apiVersion/kind without a
    schema is an error too (a typo there would otherwise pass unchecked)."""
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        return [f"{where} (Kubernetes {e.version}): {path}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: {e.message}"]
    return []


def file_schema_errors(path: Path) -> list[str]:
    out = []
    for doc in _docs(path):
        if doc.get("kind") == "Kustomization":  # no Kubernetes schema: kustomize's own file, checked below
            continue
        for version in K8S_VERSIONS:
            out += [f"{path.name}: {msg}" for msg in schema_errors(doc, version)]
    return out


@pytest.fixture(scope="module")
def kustomizations() -> dict[Path, dict]:
    """{directory: kustomization} for every kustomization.yaml under deploy/k8s."""
    out = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            if doc.get("kind") == "Kustomization":
                out[path.parent] = doc
    return out


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    out = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            assert {"apiVersion", "kind"} <= doc.keys(), f"{path.name}: document without apiVersion/kind"
            if doc["kind"] == "Kustomization":
                for res in doc["resources"]:
                    assert (path.parent / res).exists(), f"{path.relative_to(K8S)} lists missing {res}"
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice under deploy/k8s"
            out[key] = doc
    return out


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _drain_default() -> float:
    from server.settings import ServerSettings

    return float(ServerSettings.model_fields["drain_timeout_s"].default)


def test_server_deployment(objects):
    dep = objects[("Deployment", "inferload-server")]
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (c,) = pod["containers"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe in c, f"server container needs {probe}"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    res = c["resources"]
    assert {"cpu", "memory"} <= res["requests"].keys() and {"cpu", "memory"} <= res["limits"].keys()
    env = _env(c)
    assert env["INFERLOAD_HOST"] == "0.0.0.0"
    drain = float(env.get("INFERLOAD_DRAIN_TIMEOUT_S", _drain_default()))
    delay = float(env.get("INFERLOAD_SHUTDOWN_DELAY_S", 0))
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > delay + drain, (
        f"terminationGracePeriodSeconds {grace} must exceed shutdown delay {delay} + drain {drain}"
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/models"].get("readOnly") is True
    assert "preStop" not in c.get("lifecycle", {}), "SIGTERM drains (with INFERLOAD_SHUTDOWN_DELAY_S); see server.yaml"
    init = pod["initContainers"][0]
    assert init["command"][0] == "prepare-models"


def test_server_service_and_hpa(objects):
    svc = objects[("Service", "inferload-server")]
    assert svc["spec"]["selector"]["app.kubernetes.io/name"] == "inferload-server"
    assert svc["spec"]["ports"][0]["port"] == 8000
    grpc = {p["name"]: p for p in svc["spec"]["ports"]}["grpc"]  # the OIP gRPC service, as Triton's 8001
    assert grpc["port"] == 8001 and grpc["appProtocol"] == "grpc"
    (c,) = objects[("Deployment", "inferload-server")]["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["grpc"] == int(_env(c)["INFERLOAD_GRPC_PORT"]) == 8001
    hpa = objects[("HorizontalPodAutoscaler", "inferload-server")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "inferload-server"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_locust_master_and_workers(objects):
    master = objects[("Deployment", "inferload-locust-master")]
    worker = objects[("Deployment", "inferload-locust-worker")]
    svc = objects[("Service", "inferload-locust-master")]
    assert master["spec"]["replicas"] == 1
    mc = master["spec"]["template"]["spec"]["containers"][0]
    wc = worker["spec"]["template"]["spec"]["containers"][0]
    assert "--master" in mc["command"]
    assert "--worker" in wc["command"]
    assert wc["command"][wc["command"].index("--master-host") + 1] == svc["metadata"]["name"]
    assert {p["port"] for p in svc["spec"]["ports"]} >= {5557, 8089, 9646}
    for c in (mc, wc):
        assert {"requests", "limits"} <= c["resources"].keys()


# --- schema check -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_passes_kubernetes_schema(path):
    assert file_schema_errors(path) == []


def test_every_manifest_is_in_a_kustomization(kustomizations):
    listed = {(d / r).resolve() for d, k in kustomizations.items() for r in k["resources"]}
    for path in MANIFESTS:
        if path.name != "kustomization.yaml":
            assert path.resolve() in listed, f"{path.relative_to(K8S)} is in no kustomization.yaml (never applied)"
    for d, k in kustomizations.items():
        assert k["namespace"] == "inferload", f"{d.relative_to(K8S)}: namespace"


def _job(objects) -> dict:
    return copy.deepcopy(objects[("Job", "inferload-peak")])


# Each a deliberately broken copy of a real manifest: the check must reject it, or it proves nothing.
BREAKAGES = {
    "misspelled field": lambda j: j["spec"].update(backofLimit=j["spec"].pop("backoffLimit")),
    "wrong type": lambda j: j["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="5557"),
    "missing required field": lambda j: j["spec"]["template"]["spec"]["containers"][0].pop("name"),
    "unknown apiVersion": lambda j: j.update(apiVersion="batch/v9"),
    "removed API": lambda j: j.update(apiVersion="batch/v1beta1", kind="CronJob"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_schema_check_rejects_a_broken_manifest(objects, tmp_path, breakage):
    job = _job(objects)
    assert all(schema_errors(job, v) == [] for v in K8S_VERSIONS)  # the unbroken copy passes
    BREAKAGES[breakage](job)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all([objects[("Service", "inferload-peak-master")], job]))
    errors = file_schema_errors(broken)
    assert errors, f"the schema check accepted a manifest with a {breakage}"
    assert all("Job/inferload-peak" in e or "CronJob/inferload-peak" in e for e in errors), errors


def test_kustomizations_build_when_kubectl_is_present(kustomizations):
    """Optional: `kubectl kustomize` (offline, no cluster) builds each directory, and what it builds passes the
    schemas. The tests above need no kubectl; this one adds kustomize's own view where kubectl is installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (the schema check above does not need it)")
    for d in kustomizations:
        r = subprocess.run([kubectl, "kustomize", str(d)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"kubectl kustomize {d}: {r.stderr}"
        built = [doc for doc in yaml.safe_load_all(r.stdout) if doc]
        assert built, f"kubectl kustomize {d} built nothing"
        for doc in built:
            assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "inferload"
            assert schema_errors(doc, OLDEST_K8S) == []


# --- the peak Job: master, its Service, workers -------------------------------------------------------------------


def _shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script, tokenized (line continuations joined)."""
    return [shlex.split(line) for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def _options(argv: list[str]) -> dict[str, str]:
    return {a: b for a, b in zip(argv, argv[1:]) if a.startswith("--") and not b.startswith("--")}


def _peak_argv(container: dict) -> list[str]:
    argv = container["command"] + container.get("args", [])
    if argv[:2] == ["/bin/sh", "-c"]:
        (peak,) = [c for c in _shell_commands(argv[2]) if c[:2] == ["inferload", "peak"]]
        return peak
    assert argv[:2] == ["inferload", "peak"], argv
    return argv


def _pod(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _selects(selector: dict[str, str], obj: dict) -> bool:
    return selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()


def test_peak_job_expects_as_many_workers_as_the_worker_job_runs(objects):
    master = objects[("Job", "inferload-peak")]
    workers = objects[("Job", "inferload-peak-worker")]
    (mc,) = _pod(master)["containers"]
    opts = _options(_peak_argv(mc))
    n = int(opts["--expect-workers"])
    assert n >= 2, "a fleet: at least two workers"
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == n, (
        f"--expect-workers {n} but the worker Job runs parallelism {workers['spec']['parallelism']}, "
        f"completions {workers['spec']['completions']}: change both together"
    )


def test_workers_reach_the_master_through_its_service(objects):
    master = objects[("Job", "inferload-peak")]
    workers = objects[("Job", "inferload-peak-worker")]
    svc = objects[("Service", "inferload-peak-master")]
    (mc,) = _pod(master)["containers"]
    (wc,) = _pod(workers)["containers"]
    selector = svc["spec"]["selector"]
    assert _selects(selector, master), "the master Service must select the master Job's pod"
    assert not _selects(selector, workers), "the master Service must not select worker pods"
    # the worker's --master is the Service's name and port
    argv = wc["command"] + wc.get("args", [])
    assert argv[:2] == ["inferload", "worker"], argv
    host, port = _options(argv)["--master"].rsplit(":", 1)
    (svc_port,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
    assert host == svc["metadata"]["name"], f"workers connect to {host!r}, the Service is {svc['metadata']['name']!r}"
    # ... whose target is the container port the master binds
    container_ports = {p["name"]: p["containerPort"] for p in mc["ports"]}
    target = svc_port["targetPort"]
    target = container_ports[target] if isinstance(target, str) else target
    bind_host, bind_port = _options(_peak_argv(mc))["--master-bind"].rsplit(":", 1)
    assert bind_host == "0.0.0.0", "the master must listen beyond its pod's loopback"
    assert int(bind_port) == target, f"--master-bind port {bind_port}, the Service forwards to {target}"
    # the master is unready until its result is written (see peak-job.yaml), so its address is published anyway
    assert svc["spec"].get("publishNotReadyAddresses") is True


def test_peak_job_targets_the_server_service_and_keeps_its_result(objects):
    master = objects[("Job", "inferload-peak")]
    server_svc = objects[("Service", "inferload-server")]
    pod = _pod(master)
    (mc,) = pod["containers"]
    opts = _options(_peak_argv(mc))
    http_port = {p["name"]: p["port"] for p in server_svc["spec"]["ports"]}["http"]
    assert opts["--target"] == f"http://{server_svc['metadata']['name']}:{http_port}"
    assert opts["--model"] == "mobilenet_v2" and float(opts["--slo-ms"]) > 0
    # the result is written to a volume of the pod (the root filesystem is read-only) ...
    mounts = {m["mountPath"]: m["name"] for m in mc["volumeMounts"]}
    (results_mount,) = [m for m in mounts if opts["--out"].startswith(m + "/")]
    assert mounts[results_mount] in {v["name"] for v in pod["volumes"]}
    assert opts["--html"].startswith(opts["--out"] + "/")
    assert mc["securityContext"]["readOnlyRootFilesystem"] is True
    # ... and held until fetched: Ready (what the docs' `kubectl wait` waits for) = the file the script writes last
    script = mc["args"][0]
    done = mc["readinessProbe"]["exec"]["command"][-1]
    assert done.startswith(results_mount + "/") and f"touch {done}" in script
    assert "/results/.fetched" in script and "RESULTS_HOLD_S" in {e["name"] for e in mc["env"]}
    assert script.rstrip().endswith('exit "$rc"'), "the Job's status must be the search's exit code"
    assert pod["restartPolicy"] == "Never" and master["spec"]["backoffLimit"] == 0


FAKE_INFERLOAD = """#!/bin/sh
# stands in for `inferload peak`: writes a result under --out, then exits FAKE_RC (or, with FAKE_WAIT_TERM, waits to
# be stopped and exits 7 when it is)
out=$(printf '%s\\n' "$@" | sed -n '/^--out$/{n;p;}')
mkdir -p "$out" && echo '{"peak_rps": 1}' > "$out/peak.json"
if [ -n "$FAKE_WAIT_TERM" ]; then trap 'kill $!; exit 7' TERM; echo started > "$out/started"; sleep 30 & wait $!; exit 9; fi
exit "$FAKE_RC"
"""


def _until(cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture
def master_script(objects, tmp_path):
    """The master container's script with /results moved to a temporary directory and a stand-in `inferload` first on
    PATH: (start(env) -> Popen, results dir, readiness file)."""
    (mc,) = _pod(objects[("Job", "inferload-peak")])["containers"]
    assert mc["command"] == ["/bin/sh", "-c"]
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "inferload"
    fake.write_text(FAKE_INFERLOAD)
    fake.chmod(0o755)
    script = mc["args"][0].replace("/results", str(results))
    ready_file = mc["readinessProbe"]["exec"]["command"][-1].replace("/results", str(results))
    base_env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    base_env.update({e["name"]: e["value"] for e in mc["env"]})

    def start(**env: str) -> subprocess.Popen:
        # its own process group: the test stops whatever the script left (the hold's timer) and can check it left none
        return subprocess.Popen(
            ["/bin/sh", "-c", script], env={**base_env, **env}, stdout=subprocess.DEVNULL, start_new_session=True
        )

    return start, results, Path(ready_file)


def _live_in_group(pgid: int) -> list[int]:
    """Processes (not zombies) of process group pgid, from /proc."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


def _stop_group(proc: subprocess.Popen) -> None:
    """Kill the script and whatever it left in its group (the script leads the group: start_new_session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_peak_job_holds_the_result_until_fetched_then_exits_with_the_search_code(master_script):
    start, results, ready_file = master_script
    proc = start(FAKE_RC="3")
    try:
        assert _until(ready_file.exists), "the pod never turns Ready after the search"
        assert (results / "peak" / "peak.json").exists() and (results / "exit-code").read_text().strip() == "3"
        time.sleep(0.5)
        assert proc.poll() is None, "the pod must keep the result for kubectl cp"
        (results / ".fetched").touch()
        assert proc.wait(timeout=10) == 3, "the Job's status must be the search's exit code"
    finally:
        _stop_group(proc)
    proc = start(FAKE_RC="0", RESULTS_HOLD_S="1")  # nobody fetches: the hold ends by itself
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        _stop_group(proc)


def test_peak_job_passes_a_stop_on_to_the_search(master_script):
    start, results, ready_file = master_script
    proc = start(FAKE_WAIT_TERM="1")
    try:
        assert _until((results / "peak" / "started").exists)
        proc.terminate()  # what the kubelet sends on `kubectl delete`
        assert _until(ready_file.exists), "the stopped search's status is still written"
        assert (results / "exit-code").read_text().strip() == "7", "the search itself must have received the stop"
        proc.terminate()  # during the hold (or just before it starts): ends at once, with the search's code
        assert proc.wait(timeout=5) == 7
        assert _until(lambda: not _live_in_group(proc.pid), 5.0), "the hold's timer outlived the stopped pod's script"
    finally:
        _stop_group(proc)


def test_peak_workers_are_generators(objects):
    workers = objects[("Job", "inferload-peak-worker")]
    pod = _pod(workers)
    (wc,) = pod["containers"]
    assert pod["restartPolicy"] == "OnFailure"
    assert wc["resources"]["requests"]["cpu"] == "1" and "cpu" not in wc["resources"]["limits"], (
        "a whole core each and no CPU quota (CFS throttling makes the open-loop schedule slip)"
    )
    assert int(_options(wc["command"])["--connect-timeout"]) >= 60
    for job in (objects[("Job", "inferload-peak")], workers):
        assert _pod(job)["securityContext"]["runAsNonRoot"] is True
        assert _pod(job)["containers"][0]["image"] == "inferload/loadgen:dev"


def test_peak_kustomization_uses_the_base_loadgen_image(kustomizations):
    base = {i["name"]: i for i in kustomizations[K8S]["images"]}
    peak = {i["name"]: i for i in kustomizations[K8S / "peak"]["images"]}
    assert peak["inferload/loadgen"] == base["inferload/loadgen"]
    assert "peak/peak-job.yaml" not in kustomizations[K8S]["resources"], (
        "the peak Job is started on purpose (kubectl apply -k deploy/k8s/peak), not by every apply of the base"
    )
