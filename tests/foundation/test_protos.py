"""The gRPC descriptor modules are what `make protos` makes from the vendored upstream protos (reproducible: the same
bytes from the same .proto files), and each side's pool holds the OIP service it speaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_descriptor_modules_are_current():
    p = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_both_sides_carry_the_oip_service_and_its_licence():
    from loadgen.engine.oip_grpc import service_methods as loadgen_methods
    from server.oip_grpc import service_methods as server_methods

    oip = {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"}
    assert set(loadgen_methods()) == oip
    assert oip < set(server_methods())
    assert (ROOT / "server/oip_grpc/protos/LICENSE.triton").read_text().startswith("Copyright")
    assert "Apache License" in (ROOT / "loadgen/engine/oip_grpc/protos/LICENSE.kserve").read_text()
