"""deploy/prometheus.yml passes `promtool check config` and scrapes the server and the load generators."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from ._util import DEPLOY


def test_promtool_check_config():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus': apt-get install prometheus)")
    r = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_scrape_jobs():
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    server = jobs["inferload-server"]
    assert server.get("metrics_path", "/metrics") == "/metrics"
    assert server["dns_sd_configs"][0]["names"] == ["server"] and server["dns_sd_configs"][0]["port"] == 8000
    assert not server.get("honor_labels"), "replicas must not overwrite each other's `instance` series"
    lg = jobs["inferload-loadgen"]["dns_sd_configs"][0]
    assert lg["names"] == ["locust-master"] and lg["port"] == 9646
    assert jobs["inferload-loadtest"]["dns_sd_configs"][0]["names"] == ["loadtest"]
