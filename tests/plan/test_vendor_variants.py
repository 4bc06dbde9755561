"""Builds a project publishes on its own index (vLLM's CUDA 12.8 wheels, xllamacpp's cu128/cu132):
variants whose location is matrix data the user overrides, planned as the way out of an old driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import TargetError, UsageError
from envman.hardware.spec import parse_hardware
from envman.lock.locks import request_for
from envman.matrix.combinations import Combination
from envman.matrix.load import parse_matrix
from envman.matrix.overrides import apply_overrides
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan

REPO = Path(__file__).resolve().parents[2]
HINT = 'set ENVMAN_VLLM_CU128_FIND_LINKS (or find_links in [indexes."vllm.cu128"] of ~/.config/envman/config.toml)'


@pytest.fixture
def matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Matrix:
    monkeypatch.setenv("ENVMAN_CONFIG", str(tmp_path / "no-config.toml"))
    path = REPO / "matrix.toml"
    return parse_matrix(path.read_text(encoding="utf-8"), path)


def _plan(matrix: Matrix, hardware: str, environ: dict[str, str] | None = None) -> Plan:
    configured = apply_overrides(matrix, environ or {})
    host = parse_hardware(hardware, configured.gpus)
    return Planner(configured, host).plan(PlanRequest(model="gemma-3-27b-it", engine="vllm"))


def _rejections(plan: Plan, variant: str) -> list[str]:
    return [r.reason for r in plan.rejected if r.engine == "vllm" and r.variant == variant]


def test_an_old_driver_is_told_of_the_vendor_build_it_has_not_configured(matrix: Matrix) -> None:
    plan = _plan(matrix, "A100-80GB,driver=550.54.15")
    assert (str(plan.engine_version), plan.variant.name) == ("0.19.1", "cuda")  # the CUDA 12 line from PyPI
    [reason] = _rejections(plan, "cuda")
    assert reason == (
        "the NVIDIA driver 550.54.15 is too old for the CUDA 13.0 runtime (CUDA 13.x needs >= 580): upgrade the "
        "driver to >= 580; or use its CUDA 12.8 build from the project's own index, variant cu128 "
        f"(driver >= 525.60.13): {HINT} (the newest release that runs here is vllm 0.19.1)"
    )
    assert _rejections(plan, "cu128") == []  # unconfigured: not a candidate, named where it is the way out


def test_with_its_location_configured_the_vendor_build_of_the_same_release_is_planned(matrix: Matrix) -> None:
    plan = _plan(matrix, "A100-80GB,driver=550.54.15", {"ENVMAN_VLLM_CU128_FIND_LINKS": "/srv/vllm-wheels"})
    assert (str(plan.engine_version), plan.variant.name) == ("0.32.0", "cu128")
    assert plan.requires["cuda_runtime"] == "12.8"
    assert plan.requires["min_driver"] == "525.60.13"
    assert "gpu.cuda.inc.md l.53" in str(plan.requires["evidence"])
    newest, *older = _rejections(plan, "cuda")
    assert newest == (
        "the NVIDIA driver 550.54.15 is too old for the CUDA 13.0 runtime (CUDA 13.x needs >= 580): upgrade the "
        "driver to >= 580 (its CUDA 12.8 build runs here: variant cu128, from /srv/vllm-wheels)"
    )
    # the older PyPI releases need CUDA 13 too; their way out is that newer vendor build, not vllm 0.19.1
    assert older
    way_out = "(vllm 0.32.0: its CUDA 12.8 build runs here: variant cu128, from /srv/vllm-wheels)"
    assert all(r.endswith(way_out) for r in older)


def test_a_new_driver_keeps_the_pypi_build_and_too_old_a_driver_gets_no_vendor_way_out(matrix: Matrix) -> None:
    configured = {"ENVMAN_VLLM_CU128_FIND_LINKS": "/srv/vllm-wheels"}
    new = _plan(matrix, "A100-80GB,driver=580.65.06", configured)
    assert (str(new.engine_version), new.variant.name) == ("0.32.0", "cuda")
    with pytest.raises(TargetError) as caught:  # 470 runs neither CUDA 12 (>= 525.60.13) nor 13
        _plan(matrix, "A100-80GB,driver=470.256.02", configured)
    assert "variant cu128" not in str(caught.value)


def test_the_vendor_lock_request_pins_the_local_build_and_needs_its_location(matrix: Matrix) -> None:
    combination = Combination("vllm", Version("0.32.0"), "cu128")
    with pytest.raises(UsageError) as caught:
        request_for(matrix, combination, offline=True)
    assert caught.value.message.startswith("vllm/cu128 has no find_links configured: vLLM's CUDA 12.8 wheels")
    assert caught.value.hint == HINT
    configured = apply_overrides(matrix, {"ENVMAN_VLLM_CU128_FIND_LINKS": "/srv/vllm-wheels"})
    request = request_for(configured, combination, offline=True)
    assert request.requirement == "vllm==0.32.0+cu128"
    assert request.find_links == ("/srv/vllm-wheels",)
    assert request.extra_index_urls == ("https://download.pytorch.org/whl/cu128",)


def test_xllamacpp_names_both_of_its_cuda_indexes_and_a_user_overrides_them(matrix: Matrix) -> None:
    variants = matrix.engines["xllamacpp"].variants
    assert (variants["cuda"].cuda, variants["cuda"].index_url) == (
        "12.8",
        "https://xorbitsai.github.io/xllamacpp/whl/cu128",
    )
    assert (variants["cu132"].cuda, variants["cu132"].index_url) == (
        "13.2",
        "https://xorbitsai.github.io/xllamacpp/whl/cu132",
    )
    assert not variants["cu132"].lockable
    mirror = apply_overrides(matrix, {"ENVMAN_XLLAMACPP_CU132_INDEX_URL": "https://mirror.example/cu132/simple"})
    assert mirror.engines["xllamacpp"].variants["cu132"].index_url == "https://mirror.example/cu132/simple"
