"""deploy/k8s/*.yaml parse and carry what production needs: probes, resources, a grace period longer than the
server's shutdown delay + drain, non-root, read-only model volume; Locust master + workers + Service; an HPA."""

from __future__ import annotations

import pytest
import yaml

from ._util import DEPLOY

K8S = DEPLOY / "k8s"


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            assert {"apiVersion", "kind"} <= doc.keys(), f"{path.name}: document without apiVersion/kind"
            if doc["kind"] == "Kustomization":
                for res in doc["resources"]:
                    assert (K8S / res).exists(), f"kustomization lists missing {res}"
                continue
            out[(doc["kind"], doc["metadata"]["name"])] = doc
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
