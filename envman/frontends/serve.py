"""Serving a plan under Xinference: start ``xinference-local``, register the model, launch it with
the engine the plan chose, and hand back a ready server.

The server is an ordinary guarded process group (:mod:`envman.run.process`): Xinference's
supervisor, worker and model processes all live in it, so ``down``, Ctrl-C, SIGTERM and the
guardian stop every one of them (Xinference 1.4.0 leaves its worker and model processes behind
when only ``xinference-local`` gets SIGTERM; FACTS.md). One :class:`XinferenceServing` is both
``up``'s starter (:func:`envman.run.up.running`) and ``smoke``'s runner
(:class:`envman.run.smoke.Runner`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envman import paths
from envman.build.environments import Environment
from envman.engines.base import Launch
from envman.engines.launch import Bindings, served_name, url_root
from envman.errors import UsageError
from envman.frontends import builtins, xinference
from envman.frontends.builtins import ModelChoice
from envman.matrix.schema import Accelerator, Format
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter
from envman.run import evidence, http
from envman.run.server import Server, StartupError, command_for, log_tail, start_owned, wait_ready

READY_PATH = "/v1/models"  # Xinference's supervisor answers it once it is up


def read_chat_template(weights: Path) -> str | None:
    """The chat template the weights carry (GGUF metadata, or the HF folder's tokenizer config)."""
    if weights.is_file() and weights.suffix == ".gguf":
        from envman.models.gguf_header import read_header

        with weights.open("rb") as handle:
            template = read_header(handle, str(weights), until="tokenizer.chat_template").get("tokenizer.chat_template")
        return template if isinstance(template, str) else None
    config = weights / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return template if isinstance(template, str) else None
    return None


@dataclass(frozen=True)
class FrontendLaunch(Launch):
    """The frontend's server; its JSON carries the frontend with the model it launches (built-in or custom)."""

    frontend: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return super().to_json() | ({"frontend": dict(self.frontend)} if self.frontend else {})


def frontend_launch(plan: Plan, bindings: Bindings, home: Path, choice: ModelChoice | None = None) -> FrontendLaunch:
    """``xinference-local`` bound to ``bindings``, with the pair's flags and its own state folder."""
    frontend = plan.frontend
    assert frontend is not None
    if bindings.api_key:
        raise UsageError(
            "--api-key is not passed to Xinference: its own authentication is configured inside Xinference",
            hint="serve it on 127.0.0.1 (the default) behind an authenticating proxy, or without --frontend",
        )
    if bindings.extra_args:
        raise UsageError("engine arguments after -- do not go through --frontend xinference")
    env = {
        **dict(plan.engine_env),
        **dict(frontend.env),
        "XINFERENCE_HOME": str(home),  # all its state: registrations, logs, caches, auth secrets
        "XINFERENCE_ENABLE_VIRTUAL_ENV": "0",  # the locked environment is the model's environment
        "XINFERENCE_AUTH_ADVANCED": "0",  # 4.x: authentication on by default (401 for every call)
        "HF_HUB_OFFLINE": "1",  # local weights: no 3 s hub check per launch (4.x)
    }
    argv = (frontend.command, "--host", bindings.host, "--port", str(bindings.port))
    return FrontendLaunch(
        argv=argv,
        env=env,
        ready_path=READY_PATH,
        url_root=url_root(bindings.host, bindings.port),
        served_model_name=served_name(plan, bindings),
        frontend=frontend.to_json() | ({"model": choice.to_json()} if choice else {}),
    )


CONTAINER_LAUNCHER = "envman_xinference_serve"  # envman/frontends/launchers/: an image's entrypoint


def container_launch(
    plan: Plan,
    *,
    weights: str,
    port: int,
    home: str,
    chat_template: str | None,
    served_model_name: str | None = None,
    choice: ModelChoice | None = None,
) -> Launch:
    """What an image runs: envman's launcher starts ``xinference-local`` on 0.0.0.0:``port``, registers
    ``weights`` (a path inside the container) unless the model is a built-in (``choice``, by default
    :func:`~envman.frontends.builtins.model_choice`), launches it and keeps serving.

    Ready once Xinference describes the model: ``GET /v1/models/<uid>`` answers 200 only after the
    launch (400 before), so a HEALTHCHECK and :func:`envman.run.server.wait_ready` wait for the model,
    not only for the supervisor.
    """
    frontend = plan.frontend
    assert frontend is not None
    bindings = Bindings(
        weights=weights,
        host="0.0.0.0",  # noqa: S104 - inside the container only; `docker run -p` decides exposure
        port=port,
        served_model_name=served_model_name,
    )
    choice = choice or builtins.model_choice(plan)
    inner = frontend_launch(plan, bindings, Path(home), choice)
    spec = model_spec(plan, Path(weights), inner.served_model_name, chat_template)
    argv: tuple[str, ...] = ("python", "-m", CONTAINER_LAUNCHER, "--port", str(port))
    if not choice.builtin:
        argv += ("--register", json.dumps(spec.registration(frontend.spec_version), sort_keys=True))
    argv += ("--launch", json.dumps(launch_document(plan, spec, choice, weights), sort_keys=True))
    return Launch(
        argv=(*argv, "--", *inner.argv),
        env=inner.env,
        ready_path=f"/v1/models/{spec.name}",
        url_root=inner.url_root,
        served_model_name=inner.served_model_name,
    )


def launch_document(plan: Plan, spec: xinference.ModelSpec, choice: ModelChoice, weights: str) -> dict[str, Any]:
    """``POST /v1/models``: the built-in by its name with ``model_path`` = ``weights``, or the registered ``spec``."""
    frontend = plan.frontend
    assert frontend is not None
    if choice.builtin:
        assert choice.format is not None
        assert choice.size is not None
        assert choice.quantization is not None
        return xinference.builtin_launch_body(
            spec.name, name=choice.name, model_format=choice.format, size=choice.size,
            quantization=choice.quantization, model_path=weights, model_engine=frontend.model_engine,
            n_gpu=n_gpu(plan),
        )  # fmt: skip
    return xinference.launch_body(spec, model_engine=frontend.model_engine, n_gpu=n_gpu(plan))


def model_spec(plan: Plan, weights: Path, name: str, chat_template: str | None = None) -> xinference.ModelSpec:
    """The custom model for ``weights`` (its chat template read from them unless given)."""
    return xinference.ModelSpec(
        name=name,
        format=plan.artifact.format.value,
        weights=weights,
        quantization=plan.artifact.quantization,
        context_length=plan.max_model_len,
        size_in_billions=plan.model.params_b,
        chat_template=chat_template if chat_template is not None else read_chat_template(weights),
    )


def n_gpu(plan: Plan) -> int | str | None:
    """Xinference's ``n_gpu``: the plan's tensor-parallel size on GPUs, none on a CPU."""
    if plan.host.accelerator is Accelerator.CUDA:
        return plan.tensor_parallel_size
    return None


@dataclass
class XinferenceServing:
    """One plan served under Xinference from a built environment."""

    plan: Plan
    launch: Launch  # xinference-local, as a client here reaches it
    built: Environment
    weights: str
    timeout: float = 600.0
    model_uid: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    choice: ModelChoice | None = None  # built-in or custom (None: custom)
    logprobs: bool = False  # Xinference 1.4.0 refuses top_logprobs ("extra fields not permitted")

    # -- the smoke Runner -----------------------------------------------------------

    def environment(self) -> dict[str, Any]:
        frontend = self.plan.frontend.key if self.plan.frontend else None
        return evidence.environment(self.built) | {
            "frontend": frontend,
            "frontend_model": self.choice.to_json() if self.choice else None,
        }

    def lock(self) -> dict[str, Any]:
        return {"digest": self.built.lock_digest, "lockfile": self.built.lockfile}

    def argv(self) -> list[str]:
        return list(command_for(self.launch, self.built.python_bin).argv)

    def start(self, owned: list[Server], log_path: Path, reporter: Reporter) -> Server:
        return self.start_in(self.built.python_bin, None, log_path, owned, self.timeout, reporter)

    # -- up's starter -----------------------------------------------------------------

    def start_in(
        self,
        python: Path,
        name: str | None,
        log_path: Path,
        owned: list[Server],
        timeout: float,
        reporter: Reporter | None = None,
    ) -> Server:
        """Start Xinference, wait for it, register and launch the model; the model answers on return."""
        reporter = reporter or NullReporter()
        frontend = self.plan.frontend
        assert frontend is not None
        command = command_for(self.launch, python, name)
        started: list[Any] = []
        try:
            server = start_owned(command, log_path, started, reporter)
        finally:
            owned.extend(started)
        with reporter.status(f"waiting for {frontend.name} {frontend.version} at {self.launch.url_root}"):
            self.timings["frontend_ready"] = wait_ready(server, timeout)
        spec = model_spec(self.plan, Path(self.weights), self.launch.served_model_name)
        choice = self.choice or ModelChoice("custom", spec.name, "a custom model")
        remaining = max(1.0, timeout - (time.monotonic() - server.started))
        loaded = time.monotonic()
        try:
            what = f"built-in {choice.name}" if choice.builtin else f"registering {spec.name} and"
            with reporter.status(f"{what} launching it with {frontend.model_engine}"):
                if not choice.builtin:
                    xinference.register(self.launch.url_root, spec, frontend.spec_version)
                body = launch_document(self.plan, spec, choice, self.weights)
                self.model_uid = xinference.launch_model(self.launch.url_root, body, timeout=remaining)
            listed = xinference.running_models(self.launch.url_root) or []
            if self.model_uid not in listed:
                raise xinference.XinferenceError(f"{frontend.name} does not list {self.model_uid} after launching it")
            http.chat(self.launch.url, self.model_uid, max_tokens=1, timeout=remaining, logprobs=self.logprobs)
        except (xinference.XinferenceError, http.RequestError) as error:
            code = server.exit_code()
            raise StartupError(
                f"{frontend.name} {frontend.version} did not serve {spec.name} with {self.plan.engine} "
                f"{self.plan.engine_version}: {error.message}",
                log_tail=log_tail(server),
                log=server.log() + "\n" + error.message,
                returncode=code,
                hint=f"full log: {server.log_hint}",
            ) from None
        self.timings["model_ready"] = time.monotonic() - loaded
        reporter.detail(
            f"{frontend.name} answered after {self.timings['frontend_ready']:.1f}s; {spec.name} ({choice.reason}) "
            f"launched with {frontend.model_engine} and answering after another {self.timings['model_ready']:.1f}s"
        )
        return server


def serving(plan: Plan, bindings: Bindings, built: Environment, weights: Path, timeout: float) -> XinferenceServing:
    """How ``plan`` is served under its frontend, bound to ``bindings``."""
    if plan.frontend is None or plan.frontend.name != "xinference":
        raise UsageError(f"no frontend runner for {plan.frontend.name if plan.frontend else 'a plan without one'}")
    if plan.artifact.format not in (Format.GGUF, Format.PYTORCH):
        raise UsageError(f"--frontend xinference registers GGUF and HF weights, not {plan.artifact.format.value}")
    choice = builtins.model_choice(plan)
    launch = frontend_launch(plan, bindings, _home(bindings, create=True), choice)
    return XinferenceServing(plan, launch, built, str(weights), timeout, choice=choice)


def _home(bindings: Bindings, create: bool) -> Path:
    """Xinference's state folder (XINFERENCE_HOME) for a server on ``bindings.port``."""
    if create:
        return paths.state_dir("frontends") / f"xinference-{bindings.port}"
    return paths.home() / "frontends" / f"xinference-{bindings.port}"


def shown_launch(plan: Plan, bindings: Bindings) -> Launch:
    """What ``plan``/``up --dry-run`` show for a frontend plan: the frontend's server; nothing is created."""
    return frontend_launch(plan, bindings, _home(bindings, create=False), builtins.model_choice(plan))


def starter_for(plan: Plan, bindings: Bindings, weights: Path, timeout: float) -> Callable[[Environment], Any]:
    """``up``'s starter: given the built environment, the frontend serving ``plan``."""

    def make(built: Environment) -> XinferenceServing:
        return serving(plan, bindings, built, weights, timeout)

    return make
