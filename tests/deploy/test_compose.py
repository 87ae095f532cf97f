"""docker-compose.yml: valid for the compose tool, and the deployment rules hold (ports on 127.0.0.1, non-root,
read-only models, healthcheck, limits, scalable workers, headless profile writing ./results,
its peak search sending the load from INFERLOAD_WORKERS worker containers)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from ._util import ROOT, compose_tool

COMPOSE_FILE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.mark.parametrize("profile", [None, "headless"])
def test_compose_config_validates(profile):
    tool = compose_tool()
    if tool is None:
        pytest.skip(
            "no compose tool: install Debian's docker-compose (apt-get install docker-compose) or the docker compose plugin"
        )
    cmd = [*tool, "-f", str(COMPOSE_FILE)]
    if profile:
        cmd += ["--profile", profile]
    cmd += ["config", "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERLOAD_", "LOADTEST_", "COMPOSE_"))}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"


def _ports(svc: dict) -> list[str]:
    return [str(p) for p in svc.get("ports", [])]


def test_published_ports_bind_loopback_by_default(compose):
    for name, svc in compose["services"].items():
        for p in _ports(svc):
            assert p.startswith("${INFERLOAD_BIND:-127.0.0.1}:"), (
                f"service {name}: port {p!r} must bind 127.0.0.1 by default"
            )


def test_server_service(compose):
    s = compose["services"]["server"]
    assert s["build"]["dockerfile"] == "deploy/Dockerfile.server"
    assert str(s["user"]).split(":")[0] not in ("0", "root"), "server must run as non-root"
    assert any(str(v).endswith(":/models:ro") for v in s["volumes"]), "models must be mounted read-only"
    hc = " ".join(s["healthcheck"]["test"])
    assert "/v2/health/ready" in hc
    assert "cpus" in s and "mem_limit" in s
    assert s["environment"]["INFERLOAD_HOST"] == "0.0.0.0"
    assert s["environment"]["INFERLOAD_GRPC_PORT"] == "8001" and any(str(p).endswith(":8001") for p in _ports(s))
    assert "OMP_NUM_THREADS" not in s["environment"], "ORT threads must follow the cpus limit, not a fixed count"
    assert s["depends_on"]["models"]["condition"] == "service_completed_successfully"
    assert s.get("read_only") is True


def test_models_init_service_fills_volume_from_readonly_source(compose):
    m = compose["services"]["models"]
    assert "./models:/src:ro" in m["volumes"] and "models:/models" in m["volumes"]
    assert m["command"][0] == "prepare-models"
    assert (ROOT / "deploy" / "prepare-models.sh").exists()
    assert "models" in compose["volumes"]


def test_locust_services(compose):
    master = compose["services"]["locust-master"]
    worker = compose["services"]["locust-worker"]
    assert "--master" in master["command"] and any(p.endswith(":8089") for p in _ports(master))
    assert master["environment"]["INFERLOAD_METRICS_PORT"] == "9646"
    assert "--worker" in worker["command"] and "locust-master" in worker["command"]
    # scalable: no fixed container name, no published port
    assert "container_name" not in worker and not worker.get("ports")
    assert master["build"]["dockerfile"] == worker["build"]["dockerfile"] == "deploy/Dockerfile.loadgen"


def test_headless_profile_writes_results(compose):
    lt = compose["services"]["loadtest"]
    assert lt["profiles"] == ["headless"]
    assert "./results:/results" in lt["volumes"]
    cmd = " ".join(lt["command"])
    for needle in ("inferload run", "--mode open", "--payload", "--metrics-port 9646", "inferload report", "--html"):
        assert needle in cmd
    assert lt["depends_on"]["server"]["condition"] == "service_healthy"


def _options(argv: list[str]) -> dict[str, str]:
    return {a: str(b) for a, b in zip(argv, argv[1:]) if a.startswith("--") and not str(b).startswith("--")}


def test_headless_peak_with_worker_containers(compose):
    peak = compose["services"]["peak"]
    worker = compose["services"]["peak-worker"]
    assert peak["profiles"] == worker["profiles"] == ["headless"]
    assert peak["command"][:2] == ["inferload", "peak"] and worker["command"][:2] == ["inferload", "worker"]
    opts = _options(peak["command"])
    # one variable sets both the master's expectation and the number of worker containers
    assert opts["--expect-workers"] == str(worker["scale"]) == "${INFERLOAD_WORKERS:-2}"
    bind_host, bind_port = opts["--master-bind"].rsplit(":", 1)
    assert bind_host == "0.0.0.0"
    assert _options(worker["command"])["--master"] == f"peak:{bind_port}", "workers must dial the peak service"
    assert opts["--target"] == "http://server:8000"
    assert "./results:/results" in peak["volumes"] and opts["--out"].startswith("/results/")
    assert peak["depends_on"]["server"]["condition"] == worker["depends_on"]["server"]["condition"] == "service_healthy"
    assert "peak-worker" in peak["depends_on"], "`up peak` must start the workers"
    assert "container_name" not in worker and not worker.get("ports"), "worker replicas must not clash"
    assert worker["build"]["dockerfile"] == peak["build"]["dockerfile"] == "deploy/Dockerfile.loadgen"


def test_compose_resolves_the_peak_worker_count():
    tool = compose_tool()
    if tool is None:
        pytest.skip("no compose tool (see test_compose_config_validates)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERLOAD_", "LOADTEST_", "COMPOSE_", "PEAK_"))}
    cmd = [*tool, "-f", str(COMPOSE_FILE), "--profile", "headless", "config"]
    for workers, expected in ((None, 2), ("3", 3)):
        run_env = env if workers is None else {**env, "INFERLOAD_WORKERS": workers}
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env=run_env)
        assert r.returncode == 0, r.stderr
        services = yaml.safe_load(r.stdout)["services"]
        assert int(services["peak-worker"]["scale"]) == expected
        assert _options(services["peak"]["command"])["--expect-workers"] == str(expected)


def test_prometheus_and_grafana_wiring(compose):
    prom = compose["services"]["prometheus"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    graf = compose["services"]["grafana"]
    env = graf["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    vols = graf["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in vols
    dash_mount = next(v for v in vols if v.startswith("./dashboards:"))
    target = dash_mount.split(":")[1]
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/inferload.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == target
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].startswith(target + "/")
    assert (ROOT / "dashboards" / env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].rsplit("/", 1)[1]).exists()


def test_dockerfiles_run_as_non_root_and_install_only_their_own_dependencies():
    import tomllib

    server = (ROOT / "deploy/Dockerfile.server").read_text()
    loadgen = (ROOT / "deploy/Dockerfile.loadgen").read_text()
    for text in (server, loadgen):
        assert "ARG BASE_IMAGE=inferload/base:bookworm" in text
        assert "USER 10001" in text

    def prefix(t: str) -> list[str]:  # identical base steps → shared build cache (comments do not matter)
        body = t[t.index("ARG BASE_IMAGE") : t.index("COPY pyproject.toml")]
        return [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]

    assert prefix(server) == prefix(loadgen)
    assert "ARG EXTRA=server" in server and "COPY loadgen" not in server
    assert "ARG EXTRA=loadgen" in loadgen and "COPY server" not in loadgen
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    server_deps = " ".join(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"] + extras["server"]
    ).lower()
    for heavy in ("locust", "gevent", "matplotlib", "typer"):
        assert heavy not in server_deps, f"the server image would install {heavy}"
    assert "onnxruntime" not in " ".join(extras["loadgen"]).lower()
