"""The planner over the real matrix: what a user is told for each model, host and option."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from packaging.version import Version

from envman.engines.launch import Bindings, launch
from envman.errors import TargetError, UsageError
from envman.hardware.host import GIB, Cpu, Host
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Format, KnownBad, Matrix, Support
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan

# A small CPU-only box, described directly (not through --hardware): 2 cores, 24 GiB, bf16-capable.
CPU_HOST = Host(
    os="linux",
    arch="x86_64",
    cpu=Cpu(
        model="test CPU", cores=2, memory_total_bytes=24 * GIB, flags=frozenset({"avx2", "avx512f", "avx512_bf16"})
    ),
    source="test CPU host",
)
FORCE_HINT = "--force overrides floors, known-bad versions and memory limits"
SEED_FLAGS = [
    ("--max-model-len", "16384"),
    ("--gpu-memory-utilization", "0.9"),
    ("--max-num-batched-tokens", "2048"),
]


def host_of(matrix: Matrix, hardware: str | Host) -> Host:
    return hardware if isinstance(hardware, Host) else parse_hardware(hardware, matrix.gpus)


def make_plan(matrix: Matrix, hardware: str | Host, model: str, **options: Any) -> Plan:
    return Planner(matrix, host_of(matrix, hardware)).plan(PlanRequest(model=model, **options))


def refusal(matrix: Matrix, hardware: str | Host, model: str, **options: Any) -> TargetError:
    with pytest.raises(TargetError) as caught:
        make_plan(matrix, hardware, model, **options)
    assert caught.value.exit_code == 1
    return caught.value


def usage_error(matrix: Matrix, hardware: str | Host, model: str, **options: Any) -> UsageError:
    with pytest.raises(UsageError) as caught:
        make_plan(matrix, hardware, model, **options)
    assert caught.value.exit_code == 2
    return caught.value


def argv_of(plan: Plan) -> tuple[str, ...]:
    """The engine command the plan launches with `envman up`'s default bindings."""
    return launch(plan, Bindings()).argv


def option(command: tuple[str, ...] | list[str], flag: str) -> str | None:
    """The value after ``flag`` in an argv, or None when the flag is absent."""
    return command[command.index(flag) + 1] if flag in command else None


def support(matrix: Matrix, family: str, engine: str) -> Support:
    found = matrix.support(family, engine)
    assert found is not None, f"matrix.toml has no {family} x {engine}"
    return found


def floor_reason(matrix: Matrix, engine: str, version: str, family: str = "gemma3") -> str:
    s = support(matrix, family, engine)
    return (
        f"{engine} {version} cannot run {family}: the architecture was added in {engine} {s.min_version} "
        f"({s.evidence}). Use {engine}>={s.min_version} (known good: {s.known_good[-1]})"
    )


def bnb_known_bad(matrix: Matrix) -> KnownBad:
    [bad] = [b for b in support(matrix, "gemma3", "vllm").known_bad if b.applies(Version("0.8.0"), Format.BNB)]
    return bad


# -- the seeds --------------------------------------------------------------------------------


def test_vllm_0_7_2_cannot_run_gemma3(real_matrix: Matrix) -> None:
    error = refusal(real_matrix, "H100", "gemma-3-27b-it", engine="vllm", version="0.7.2")

    assert support(real_matrix, "gemma3", "vllm").min_version == Version("0.8.0")
    assert error.message.splitlines()[0] == "nothing can serve gemma-3-27b-it on 1x H100 with --engine vllm:"
    assert f"  - 0.7.2 cuda pytorch: {floor_reason(real_matrix, 'vllm', '0.7.2')}" in error.message.splitlines()
    assert error.hint == FORCE_HINT


def test_force_runs_vllm_0_7_2_and_says_what_it_overrode(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "H100", "gemma-3-27b-it", engine="vllm", version="0.7.2", force=True)

    assert (plan.engine, str(plan.engine_version)) == ("vllm", "0.7.2")
    assert plan.forced == (floor_reason(real_matrix, "vllm", "0.7.2"),)


def test_xllamacpp_0_1_10_cannot_run_gemma3(real_matrix: Matrix) -> None:
    error = refusal(real_matrix, "H100", "gemma-3-27b-it", engine="xllamacpp", version="0.1.10")

    assert support(real_matrix, "gemma3", "xllamacpp").min_version == Version("0.1.11")
    assert floor_reason(real_matrix, "xllamacpp", "0.1.10") in error.message
    assert error.hint == FORCE_HINT


def test_bnb_gemma3_on_vllm_0_8_0_is_known_bad_until_0_8_3(real_matrix: Matrix) -> None:
    bad = bnb_known_bad(real_matrix)
    reason = f"known bad: {bad.reason} (error: {bad.error}); fixed in 0.8.3"

    error = refusal(real_matrix, "A100-80GB", "gemma-3-27b-it", engine="vllm", version="0.8.0", format="bnb")

    assert bad.fixed_in == Version("0.8.3")
    assert "'layers.0.mlp.down_proj.weight.absmax'" in bad.error
    assert f"  - 0.8.0 cuda bnb:4bit: {reason}" in error.message.splitlines()
    assert error.hint == FORCE_HINT
    forced = make_plan(
        real_matrix, "A100-80GB", "gemma-3-27b-it", engine="vllm", version="0.8.0", format="bnb", force=True
    )
    assert forced.forced == (reason,)


@pytest.mark.parametrize(
    ("version", "quantization", "load_format"),
    [
        ("0.7.3", "bitsandbytes", "bitsandbytes"),  # <0.8.2 needs both flags
        ("0.8.3", "bitsandbytes", None),  # 0.8.2-0.8.3 derives the load format
        ("0.27.1", None, None),  # >=0.8.4 reads both from config.json (0.27.1: the last with it in-tree)
    ],
)
def test_bitsandbytes_flags_follow_the_vllm_version(
    real_matrix: Matrix, version: str, quantization: str | None, load_format: str | None
) -> None:
    # 0.7.3 predates gemma3 support: forced, to see the flags it would get.
    plan = make_plan(
        real_matrix, "A100-80GB", "gemma-3-27b-it", engine="vllm", version=version, format="bnb", force=True
    )

    assert plan.artifact.format is Format.BNB
    assert option(argv_of(plan), "--quantization") == quantization
    assert option(argv_of(plan), "--load-format") == load_format
    assert argv_of(plan).count("--quantization") == (1 if quantization else 0)


def test_bitsandbytes_left_vllm_for_a_plugin_in_0_28_0_which_the_cuda_lock_carries(real_matrix: Matrix) -> None:
    """vllm 0.28.0 on has no 'bitsandbytes' in QUANTIZATION_METHODS (read from the wheels): the CUDA
    variant's lock carries vllm-bnb-plugin (lock_plugins), so the plan loads it and says where from."""
    from envman.lock.locks import request_for
    from envman.matrix.combinations import Combination

    plan = make_plan(real_matrix, "A100-80GB", "gemma-3-27b-it", engine="vllm", version="0.32.0", format="bnb")
    assert plan.artifact.format is Format.BNB
    assert (
        "quantization method 'bitsandbytes' is registered by the plugin vllm-bnb-plugin, which the cuda lock of "
        "vllm 0.32.0 carries ('bitsandbytes' is in QUANTIZATION_METHODS up to 0.27.1, not in "
        "vllm-0.28.0-cp38-abi3-manylinux_2_28_x86_64.whl)"
    ) in plan.notes
    request = request_for(real_matrix, Combination("vllm", Version("0.32.0"), plan.variant.name), offline=True)
    assert "vllm-bnb-plugin" in request.with_requirements
    older = request_for(real_matrix, Combination("vllm", Version("0.19.1"), "cuda"), offline=True)
    assert "vllm-bnb-plugin" not in older.with_requirements  # in-tree up to 0.27.1: no second registration
    cpu = request_for(real_matrix, Combination("vllm", Version("0.32.0"), "cpu"), offline=True)
    assert "vllm-bnb-plugin" not in cpu.with_requirements  # the plugin requires `vllm`, the CUDA distribution


def test_a_variant_that_does_not_lock_the_plugin_refuses_the_moved_method(real_matrix: Matrix) -> None:
    vllm = real_matrix.engines["vllm"]
    cuda = dataclasses.replace(vllm.variants["cuda"], lock_plugins=())
    matrix = dataclasses.replace(
        real_matrix,
        engines={**real_matrix.engines, "vllm": dataclasses.replace(vllm, variants={**vllm.variants, "cuda": cuda})},
    )
    error = refusal(matrix, "A100-80GB", "gemma-3-27b-it", engine="vllm", version="0.32.0", format="bnb")
    line = next(ln for ln in error.message.splitlines() if "bnb" in ln)
    assert line.endswith(
        "0.32.0 cuda bnb:4bit: vllm 0.32.0 no longer registers quantization method 'bitsandbytes': it moved to the "
        "plugin package vllm-bnb-plugin ('bitsandbytes' is in QUANTIZATION_METHODS up to 0.27.1, not in "
        "vllm-0.28.0-cp38-abi3-manylinux_2_28_x86_64.whl), which the cuda lock does not install; "
        "releases <0.28.0,>=0.7.0 have it in-tree"
    )


def test_smooth_quant_fp8_from_lmdeploy_is_rejected_by_vllm(real_matrix: Matrix) -> None:
    methods = ", ".join(real_matrix.engines["vllm"].quant_methods[Format.FP8])
    why = f"vllm does not recognise quant_method 'smooth_quant' (made by lmdeploy); it loads {methods} for fp8"

    error = refusal(real_matrix, "H100", "InternVL2_5-26B-MPO-fp8", engine="vllm")
    forced = refusal(real_matrix, "H100", "InternVL2_5-26B-MPO-fp8", engine="vllm", force=True)

    assert error.message.splitlines()[0] == "nothing can serve internvl2_5-26b-mpo-fp8 on 1x H100 with --engine vllm:"
    assert any(line.endswith(f"fp8:float8_e4m3fn: {why}") for line in error.message.splitlines())
    assert why in forced.message  # not a soft limit: --force cannot load what vLLM does not recognise


def test_lmdeploy_serves_its_own_smooth_quant_output(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "H100", "internvl2_5-26b-mpo-fp8", engine="lmdeploy", version="0.7.2.post1")

    assert (plan.engine, plan.artifact.quant_method) == ("lmdeploy", "smooth_quant")
    # InternVL ships its own modelling code: a warning, never a silent --trust-remote-code.
    assert plan.warnings == (
        "internvl2_5-26b-mpo-fp8 ships its own modelling code; review it and pass --trust-remote-code to run it",
    )
    assert "--trust-remote-code" not in argv_of(plan)


@pytest.mark.parametrize(
    ("hardware", "dtype", "tensor_parallel_size"),
    [
        # compute capability 7.0: no bfloat16, and vllm 0.19.1 (the newest built for 7.0) refuses
        # float16 for gemma3 (engine_rules): float32, 4x32 GiB at 8192 tokens
        ("V100x4", "float32", 4),
        ("A100-40GBx2", "bfloat16", 2),
        ("H100", "bfloat16", 1),
    ],
)
def test_gemma_3_27b_on_the_seed_hosts(
    real_matrix: Matrix, hardware: str, dtype: str, tensor_parallel_size: int
) -> None:
    plan = make_plan(real_matrix, hardware, "gemma-3-27b-it")

    assert (plan.engine, plan.artifact.format, plan.dtype) == ("vllm", Format.PYTORCH, dtype)
    assert plan.tensor_parallel_size == tensor_parallel_size
    assert option(argv_of(plan), "--dtype") == dtype
    assert option(argv_of(plan), "--tensor-parallel-size") == str(tensor_parallel_size)
    for flag, value in SEED_FLAGS:
        if dtype == "float32" and flag == "--max-model-len":
            value = "8192"  # float32 weights take twice the memory of the seed's float16 run
        assert option(argv_of(plan), flag) == value
    assert "--enable-chunked-prefill" in argv_of(plan)


def test_v100_dtype_note_says_why(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "V100x4", "gemma-3-27b-it")
    assert (
        "dtype float32: bfloat16 needs compute capability 8.0, V100 has 7.0, and vllm 0.19.1 refuses float16 for "
        "model type gemma3 ('Numerical instability. Please use bfloat16 or float32 instead.', refused at "
        "vllm/config/model.py:2417 ('does not support float16')); "
        "vllm 0.9.0.1 is the newest release that allows float16"
    ) in plan.notes
    assert plan.max_model_len == 8192  # float32 weights (4 bytes each) leave room for 8192 tokens, not 16384


def test_float32_that_does_not_fit_names_the_release_that_allows_float16(real_matrix: Matrix) -> None:
    error = refusal(real_matrix, "T4", "gemma-3-4b-it", engine="vllm", format="pytorch")
    line = next(ln for ln in error.message.splitlines() if "0.32.0 cuda pytorch" in ln)
    assert "does not fit" in line
    assert line.endswith(
        "; in float32 because vllm 0.32.0 refuses float16 for model type gemma3 ('Numerical instability. Please use "
        "bfloat16 or float32 instead.', refused at vllm/config/model.py:2417 ('does not support float16')); "
        "vllm 0.9.0.1 is the newest release that allows float16"
    )


def test_an_older_release_that_allows_float16_runs_float16_on_a_v100(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "V100x4", "gemma-3-27b-it", engine="vllm", version="0.9.0.1")
    assert (str(plan.engine_version), plan.dtype) == ("0.9.0.1", "float16")
    assert "dtype float16: bfloat16 needs compute capability 8.0, V100 has 7.0" in plan.notes


def test_a_float16_refused_by_the_release_is_judged_per_family(real_matrix: Matrix) -> None:
    """Qwen3 is not in vllm's float16 table: an AWQ checkpoint on a T4 keeps float16."""
    plan = make_plan(real_matrix, "T4", "qwen3-8b", engine="vllm", format="awq")
    assert plan.dtype == "float16"


def test_max_model_len_beyond_the_model_is_a_usage_error(real_matrix: Matrix) -> None:
    limit = real_matrix.models["gemma-3-27b-it"].max_context

    error = usage_error(real_matrix, "H100", "gemma-3-27b-it", max_model_len=limit + 1)

    assert error.message == f"--max-model-len {limit + 1} exceeds gemma-3-27b-it's maximum context {limit}"
    assert error.hint == f"use --max-model-len {limit} or less"


def test_vllm_0_33_needs_compute_capability_7_5(real_matrix: Matrix) -> None:
    why = "needs compute capability 7.5, V100 has 7.0: vLLM 0.20.0 dropped 7.0 (V100) from the CUDA 12.8+ build list"

    error = refusal(real_matrix, "V100x4", "gemma-3-27b-it", engine="vllm", version="0.33.0")
    forced = refusal(real_matrix, "V100x4", "gemma-3-27b-it", engine="vllm", version="0.33.0", force=True)

    assert any(line.startswith(f"  - 0.33.0 cuda: {why}") for line in error.message.splitlines())
    assert why in forced.message  # a hardware limit, not something --force can override


def test_v100_falls_back_to_the_last_vllm_built_for_it(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "V100x4", "gemma-3-27b-it")

    assert (plan.engine, str(plan.engine_version), plan.dtype) == ("vllm", "0.19.1", "float32")
    assert "vllm 0.19.1: the newest release built for V100 (compute capability 7.0); not yet smoke-tested" in plan.notes
    rejected = [r.reason for r in plan.rejected if r.engine == "vllm" and r.version == "0.32.0"]
    assert rejected
    assert rejected[0].startswith("needs compute capability 7.5, V100 has 7.0")


# -- memory ---------------------------------------------------------------------------------------


def test_27b_in_bf16_does_not_fit_one_rtx4090(real_matrix: Matrix) -> None:
    error = refusal(real_matrix, "RTX4090", "gemma-3-27b-it", engine="vllm", format="pytorch")

    lines = error.message.splitlines()
    assert lines[:3] == [
        "nothing can serve gemma-3-27b-it on 1x RTX4090 with --engine vllm:",
        "vllm:",
        "  - cpu: variant cpu: cpu build; the target is a cuda host (1x RTX4090)",
    ]
    does_not_fit = (
        " cuda pytorch: does not fit: needs 60.8 GiB per GPU (weights 51.0 + KV cache 7.8 for 16384 tokens"
        " + overhead 2.0); 1x RTX4090 gives 21.6 GiB at 90% utilisation; 4x RTX4090 would fit (tensor_parallel_size 4)"
    )
    assert f"  - 0.32.0{does_not_fit}" in lines
    assert all(line.startswith("  - 0.") and line.endswith(does_not_fit) for line in lines[3:])  # each known-good one


def test_a_cpu_only_host_gets_a_gguf_on_xllamacpp(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, CPU_HOST, "gemma-3-27b-it")

    assert (plan.engine, plan.variant.name, plan.artifact.format, plan.dtype) == ("xllamacpp", "cpu", Format.GGUF, None)
    assert option(argv_of(plan), "--ctx-size") == str(plan.max_model_len)
    assert "--n-gpu-layers" not in argv_of(plan)
    assert plan.memory.fits
    assert f"max_model_len {plan.max_model_len}: reduced from 16384 to fit" in plan.notes
    vllm_cpu = [r.reason for r in plan.rejected if (r.engine, r.variant, r.format) == ("vllm", "cpu", "pytorch")]
    assert vllm_cpu
    assert set(vllm_cpu) == {  # one per known-good release
        "does not fit: needs 60.8 GiB of RAM (weights 51.0 + KV cache 7.8 for 16384 tokens + overhead 2.0); "
        "this host gives 19.2 GiB at 80% utilisation"
    }


def test_8gb_of_ram_fits_nothing_and_every_engine_says_why(real_matrix: Matrix) -> None:
    good = support(real_matrix, "gemma3", "xllamacpp").known_good[-1]

    error = refusal(real_matrix, "cpu:8GB", "gemma-3-27b-it")

    lines = error.message.splitlines()
    assert lines[0] == "nothing can serve gemma-3-27b-it on CPU only (16 cores, 8 GiB RAM):"
    headings = [line.removesuffix(":") for line in lines[1:] if not line.startswith(" ")]
    assert sorted(headings) == sorted(real_matrix.engines)  # one "engine:" heading each, then its reasons
    assert (
        f"  - {good} cpu gguf:Q4_K_M: does not fit: needs 25.2 GiB of RAM (weights 15.5 + KV cache 7.8 for 16384 "
        "tokens + overhead 2.0); this host gives 6.4 GiB at 80% utilisation"
    ) in lines
    assert error.hint == "try another --hardware, --format, or a smaller model; `envman models` lists the catalog"


# -- bad requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (
            {"model": "gemma-3-27b"},
            "unknown model 'gemma-3-27b'",
            "did you mean: gemma-3-27b-it",
        ),
        (
            {"model": "gemma-3-27b-it", "engine": "vlm"},
            "unknown engine 'vlm'",
            "did you mean vllm? engines: vllm, xllamacpp",
        ),
        (
            {"model": "gemma-3-27b-it", "version": "0.8.0"},
            "--version needs --engine",
            "e.g. --engine vllm --version 0.8.5",
        ),
        (
            {"model": "gemma-3-27b-it", "engine": "vllm", "version": "0.8x"},
            "'0.8x' is not a version",
            "e.g. --version 0.8.5",
        ),
        (
            {"model": "gemma-3-27b-it", "format": "safetensors"},
            "unknown format 'safetensors'",
            "formats: pytorch, gguf, awq, gptq, bnb, fp8, mxfp4, mlx (GGUF with a quantization: gguf:Q4_K_M)",
        ),
        (
            {"model": "gemma-3-27b-it", "format": "awq"},
            "gemma-3-27b-it has no awq weights",
            "it comes as: pytorch, gguf:Q4_K_M",
        ),
    ],
)
def test_bad_requests_are_usage_errors(real_matrix: Matrix, options: dict[str, Any], message: str, hint: str) -> None:
    model = options.pop("model")

    error = usage_error(real_matrix, "H100", model, **options)

    assert error.message == message
    assert error.hint is not None
    assert error.hint.startswith(hint)


def test_unknown_model_hint_points_to_the_catalog(real_matrix: Matrix) -> None:
    error = usage_error(real_matrix, "H100", "gemma-3-27b")
    assert error.hint is not None
    assert error.hint.endswith("? `envman models` lists the catalog")


@pytest.mark.parametrize("name", ["google/gemma-3-27b-it", "GEMMA-3-27B-IT", "  gemma-3-27b-it "])
def test_hub_repo_ids_and_spellings_resolve_to_the_catalog_model(real_matrix: Matrix, name: str) -> None:
    assert make_plan(real_matrix, "H100", name).model.name == "gemma-3-27b-it"


def test_naming_a_quantized_repo_plans_those_weights(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "H100", "unsloth/gemma-3-27b-it-bnb-4bit")
    assert plan.artifact.repo == "unsloth/gemma-3-27b-it-bnb-4bit"


# -- what a plan reports --------------------------------------------------------------------------

HOSTS = ["H100", "A100-40GBx2", "V100x4", "RTX4090", CPU_HOST, "cpu"]


def host_id(hardware: str | Host) -> str:
    """A stable test id (a Host's repr holds a frozenset, whose order changes between processes)."""
    return hardware if isinstance(hardware, str) else hardware.source.replace(" ", "-")


@pytest.mark.parametrize("hardware", HOSTS, ids=host_id)
def test_every_engine_is_chosen_or_explained(real_matrix: Matrix, hardware: str | Host) -> None:
    plan = make_plan(real_matrix, hardware, "gemma-3-27b-it")

    assert {r.engine for r in plan.rejected} | {plan.engine} == set(real_matrix.engines)
    assert all(r.reason for r in plan.rejected)


@pytest.mark.parametrize("hardware", HOSTS, ids=host_id)
def test_no_trust_remote_code_unless_asked(real_matrix: Matrix, hardware: str | Host) -> None:
    plan = make_plan(real_matrix, hardware, "gemma-3-27b-it")
    assert "--trust-remote-code" not in argv_of(plan)
    assert plan.warnings == ()


def test_a_remote_code_model_gets_a_warning_not_the_flag(real_matrix: Matrix) -> None:
    # smoke-gemma3 as if it shipped its own code: vllm is the engine with a --trust-remote-code flag.
    remote = dataclasses.replace(real_matrix.models["smoke-gemma3"], trust_remote_code=True)
    matrix = dataclasses.replace(real_matrix, models={**real_matrix.models, "smoke-gemma3": remote})

    plan = make_plan(matrix, "H100", "smoke-gemma3", engine="vllm")
    trusted = make_plan(matrix, "H100", "smoke-gemma3", engine="vllm", trust_remote_code=True)

    assert "--trust-remote-code" not in argv_of(plan)
    assert plan.warnings == (
        "smoke-gemma3 ships its own modelling code; review it and pass --trust-remote-code to run it",
    )
    assert "--trust-remote-code" in argv_of(trusted)
    assert trusted.warnings == ()


def test_a_plan_is_a_decision_without_bindings(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "A100-40GBx2", "gemma-3-27b-it")

    assert not {"command", "env", "url", "served_model_name"} & set(plan.to_json())
    bound = launch(plan, Bindings(weights="/w", host="0.0.0.0", port=9000, served_model_name="g", api_key="k"))
    assert bound.argv[:3] == ("vllm", "serve", "/w")
    assert (option(bound.argv, "--host"), option(bound.argv, "--port")) == ("0.0.0.0", "9000")
    assert option(bound.argv, "--served-model-name") == "g"
    assert "k" not in bound.argv
    assert bound.env["VLLM_API_KEY"] == "k"
    assert bound.shown_env()["VLLM_API_KEY"] == "***"
    assert bound.url == "http://127.0.0.1:9000/v1"


def test_plan_json_shape(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "A100-40GBx2", "gemma-3-27b-it")
    data = json.loads(json.dumps(plan.to_json() | launch(plan, Bindings()).to_json()))

    assert {
        "family", "engine", "engine_version", "variant", "format", "quantization", "dtype",
        "tensor_parallel_size", "env", "command", "rejected", "forced", "warnings", "notes",
    } <= set(data)  # fmt: skip
    assert (data["family"], data["engine"], data["variant"], data["format"]) == ("gemma3", "vllm", "cuda", "pytorch")
    assert (data["quantization"], data["dtype"], data["tensor_parallel_size"]) == (None, "bfloat16", 2)
    assert isinstance(data["env"], dict)
    assert data["command"][:3] == ["vllm", "serve", "google/gemma-3-27b-it"]
    assert all(isinstance(arg, str) for arg in data["command"])
    assert data["rejected"]
    for rejection in data["rejected"]:
        assert {"engine", "version", "reason"} <= set(rejection)
        assert isinstance(rejection["reason"], str)


def test_a_forced_plan_lists_each_rejection_once(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "RTX4090", "gemma-3-27b-it", engine="vllm", format="pytorch", force=True)

    assert len(plan.rejected) == len(set(plan.rejected))


def test_a_forced_plan_does_not_reject_itself(real_matrix: Matrix) -> None:
    plan = make_plan(real_matrix, "H100", "gemma-3-27b-it", engine="vllm", version="0.7.2", force=True)
    chosen = (plan.engine, str(plan.engine_version), plan.variant.name, plan.artifact.label)

    assert [r for r in plan.rejected if (r.engine, r.version, r.variant, r.format) == chosen] == []


# -- the CLI --------------------------------------------------------------------------------------

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_cli_plan_json(envman_cli: Cli) -> None:
    result = envman_cli("plan", "gemma-3-27b-it", "--hardware", "A100-40GBx2", "--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["engine"], data["tensor_parallel_size"]) == ("vllm", 2)


def test_cli_unknown_model_exits_2_with_a_hint(envman_cli: Cli) -> None:
    result = envman_cli("plan", "no-such-model", "--hardware", "H100")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "error: unknown model 'no-such-model'"
    assert lines[1].startswith("hint: ")
    assert "`envman models` lists the catalog" in lines[1]
    assert "hub repo id" in lines[1]
    assert "Traceback" not in result.stderr


def test_cli_nothing_fits_exits_1(envman_cli: Cli) -> None:
    result = envman_cli("plan", "gemma-3-27b-it", "--hardware", "cpu:8GB")

    assert result.returncode == 1
    assert result.stderr.startswith("error: nothing can serve gemma-3-27b-it on CPU only (16 cores, 8 GiB RAM):\n")
    assert "does not fit: needs 25.2 GiB of RAM" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_plan_accepts_the_trust_remote_code_it_asks_for(envman_cli: Cli) -> None:
    result = envman_cli(
        "plan", "internvl2_5-26b-mpo-fp8", "--engine", "lmdeploy", "--version", "0.7.2.post1",
        "--hardware", "H100", "--trust-remote-code", "--json",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan",), "Missing"),
        (("plan", "smoke-gemma3", "--bogus"), "No such option: --bogus"),
        (("plan", "smoke-gemma3", "--max-model-len", "abc"), "--max-model-len"),
    ],
)
def test_cli_usage_errors_exit_2_without_a_traceback(envman_cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = envman_cli(*args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_mlx_lm_refuses_an_api_key_it_cannot_check(real_matrix: Matrix) -> None:
    linux = parse_hardware("cpu", real_matrix.gpus)
    mac = dataclasses.replace(linux, os="darwin", arch="arm64", source="a Mac")
    plan = make_plan(real_matrix, mac, "gemma-3-27b-it", engine="mlx-lm", version="0.22.0")
    assert launch(plan, Bindings()).argv  # without a key it launches
    with pytest.raises(UsageError, match="cannot check an API key"):
        launch(plan, Bindings(api_key="k"))


# -- the host stack: the driver, GPU architectures and glibc each build needs (read from its wheels)


@pytest.mark.parametrize(
    ("hardware", "version", "cuda"),
    [
        ("A100-40GBx2,driver=580.65.06", "0.32.0", "13.0"),  # the default: a CUDA 13 build
        ("A100-40GBx2,driver=550.54.15", "0.19.1", "12.8"),  # CUDA 13 needs >= 580: the newest 12.x build
        ("A100-40GBx2,driver=535.183.01", "0.19.1", "12.8"),
        ("V100x4,driver=550.54.15", "0.19.1", "12.8"),  # no CC 7.0 kernels from 0.20.0 either
        ("RTX5090x2,driver=570.86.10", "0.19.1", "12.8"),  # 0.10.2+ has sm_120 kernels
        ("B200,driver=550.54.15", "0.19.1", "12.8"),
        ("H100,driver=580.65.06,glibc=2.27", "0.21.0", "13.0"),  # 0.22+ wheels are manylinux_2_28
        ("H100,glibc=2.17", "0.8.5.post1", "12.4"),  # only the manylinux1 builds of 2025 run
    ],
)
def test_the_plan_picks_a_build_this_driver_gpu_and_glibc_can_run(
    real_matrix: Matrix, hardware: str, version: str, cuda: str
) -> None:
    plan = make_plan(real_matrix, hardware, "gemma-3-27b-it", engine="vllm")
    assert str(plan.engine_version) == version
    assert plan.requires["cuda_runtime"] == cuda
    if version != "0.32.0":
        assert any("not yet smoke-tested" in n for n in plan.notes)
        refused = [r.reason for r in plan.rejected if r.version == "0.32.0"]
        assert refused, plan.rejected
        if not hardware.startswith("V100"):  # V100: the compute-capability limit of 0.20+ comes first
            assert f"the newest release that runs here is vllm {version}" in refused[0]


def test_a_driver_too_old_for_every_build_is_refused_with_the_upgrade(real_matrix: Matrix) -> None:
    error = refusal(real_matrix, "A100-80GB,driver=470.256.02", "gemma-3-27b-it", engine="vllm")
    assert "upgrade the driver to >= 580" in error.message
    assert "upgrade the driver to >= 525.60.13 for vllm 0.19.1 (CUDA 12.8" in error.message  # the 12.x line


def test_requires_is_in_the_plan_json(real_matrix: Matrix) -> None:
    gpu = make_plan(real_matrix, "H100", "gemma-3-27b-it", engine="vllm").to_json()["requires"]
    assert gpu["cuda_runtime"] == "13.0"
    assert gpu["min_driver"] == "580"
    assert "9.0" in gpu["compute_capabilities"]
    assert gpu["glibc"]
    cpu = make_plan(real_matrix, "cpu", "smoke-gemma3").to_json()["requires"]
    assert cpu["cuda_runtime"] is None
    assert cpu["min_driver"] is None


def test_driver_option_names_the_target_driver(envman_cli: Cli) -> None:
    result = envman_cli("plan", "gemma-3-27b-it", "--hardware", "A100-40GBx2", "--driver", "550.54.15", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["engine_version"] == "0.19.1"
    bad = envman_cli("plan", "gemma-3-27b-it", "--hardware", "A100-40GBx2", "--driver", "five-fifty")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
