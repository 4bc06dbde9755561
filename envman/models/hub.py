"""A Hugging Face repo's model metadata, without its weights, through huggingface_hub.

What is read: the repo's file list at one commit (``model_info``), config.json and the
tokenizer config (downloaded into the HF cache), each safetensors shard's header (a range
request per shard, ``parse_safetensors_file_metadata``) and each GGUF file's header (range
requests of 1 MiB until the tensor data starts). huggingface_hub honours HF_ENDPOINT,
HF_TOKEN, HF_HOME and HF_HUB_OFFLINE; offline, or with the hub unreachable, the cached
snapshot of the repo is read instead, and nothing cached is exit 3.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from envman.errors import PrerequisiteError, UsageError
from envman.matrix.schema import Artifact, Format, Matrix
from envman.models import assemble, hf_config
from envman.models.gguf_header import READ_SIZE, Header, read_header
from envman.models.gguf_model import (
    GgufFacts,
    check_parts,
    facts,
    group_label,
    is_mmproj,
    part_names,
    quantization_label,
)
from envman.models.local import INDEX, read_folder
from envman.models.resolved import ResolvedModel, Source
from envman.models.tensors import TensorEntry

METADATA_FILES = ("config.json", "tokenizer_config.json", INDEX, "chat_template.jinja", "chat_template.json")


def _transport_errors() -> tuple[type[BaseException], ...]:
    # huggingface_hub 1.x talks HTTP through httpx, 2.x through httpx2: either one's TransportError.
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return (module.TransportError,)
    return ()


class RangeReader:
    """A hub file read front to back by HTTP range requests (``read(n)`` as on a file)."""

    def __init__(self, repo: str, filename: str, revision: str) -> None:
        from huggingface_hub import hf_hub_url

        self.url = hf_hub_url(repo, filename, revision=revision)
        self.position = 0
        self.requests = 0

    def read(self, size: int, /) -> bytes:
        # exported through a lazy-import table that mypy cannot read; public since huggingface_hub 0.x
        from huggingface_hub.utils import (  # type: ignore[attr-defined]
            build_hf_headers,
            get_session,
            hf_raise_for_status,
        )

        size = max(size, READ_SIZE)
        headers = {**build_hf_headers(), "Range": f"bytes={self.position}-{self.position + size - 1}"}
        response = get_session().get(self.url, headers=headers)
        self.requests += 1
        if response.status_code == 416:  # asked past the end
            return b""
        hf_raise_for_status(response)
        data: bytes = response.content
        if response.status_code == 200:  # a server that ignores Range sends the whole file
            data = data[self.position : self.position + size]
        self.position += len(data)
        return data


@contextmanager
def _errors(repo: str, revision: str | None, what: str) -> Iterator[None]:
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except GatedRepoError:
        raise PrerequisiteError(
            f"{repo} is gated on the Hugging Face hub: {what} cannot be read",
            hint=f"accept its licence at https://huggingface.co/{repo} and set HF_TOKEN to a token of that account",
        ) from None
    except RevisionNotFoundError:
        raise UsageError(f"{repo} has no revision {revision!r} on the hub ({constants.ENDPOINT})") from None
    except RepositoryNotFoundError:
        raise UsageError(
            f"{repo} is not a model on the hub ({constants.ENDPOINT}), or it is private",
            hint="check the repo id (org/name[@revision]); for a private repo set HF_TOKEN",
        ) from None
    except RemoteEntryNotFoundError:
        raise UsageError(f"{repo} has no {what}") from None
    except HfHubHTTPError as error:
        raise PrerequisiteError(
            f"the hub ({constants.ENDPOINT}) refused {repo} {what}: {error}",
            hint="check HF_ENDPOINT and HF_TOKEN",
        ) from None


def read_repo(matrix: Matrix, repo: str, revision: str | None, *, allow_unknown: bool = False) -> ResolvedModel:
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        return _from_cache(matrix, repo, revision, "HF_HUB_OFFLINE is set", allow_unknown)
    unreachable: tuple[type[BaseException], ...] = (OfflineModeIsEnabled, *_transport_errors())
    try:
        with _errors(repo, revision, "repository information"):
            info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    except unreachable as error:
        return _from_cache(
            matrix, repo, revision, f"the hub ({constants.ENDPOINT}) cannot be reached: {error}", allow_unknown
        )
    sha = info.sha or revision or "main"
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    return _read_online(matrix, repo, revision, sha, sizes, allow_unknown)


def _read_online(
    matrix: Matrix, repo: str, revision: str | None, sha: str, sizes: dict[str, int | None], allow_unknown: bool
) -> ResolvedModel:
    from huggingface_hub import HfApi, hf_hub_download

    ggufs, mmproj = _gguf_groups(sizes)
    if "config.json" not in sizes and not ggufs:
        raise UsageError(
            f"{repo} holds neither a config.json nor .gguf files: not a model envman can read",
            hint="name a model repository (Hugging Face layout or GGUF)",
        )
    files: list[str] = []
    downloaded: dict[str, Path] = {}
    for name in METADATA_FILES:
        if name in sizes:
            with _errors(repo, revision, name):
                # by the ref asked for (not the commit), so the cache records it for offline reads
                downloaded[name] = Path(hf_hub_download(repo, name, revision=revision))
            files.append(name)
    gguf_artifacts, first = _read_ggufs(repo, sha, sizes, ggufs, mmproj, files)
    if "config.json" in downloaded:
        config = hf_config.load(downloaded["config.json"], f"{repo} config.json")
        shards = _shards(sizes, downloaded.get(INDEX), repo)
        tensors: list[TensorEntry] | None = None
        if shards:
            tensors = []
            api = HfApi()
            for shard in shards:
                tensors.extend(_safetensors_header(api, repo, shard, sha, revision))
                files.append(f"{shard} (header)")
        built = assemble.from_config(
            matrix,
            name=repo,
            config=config,
            where=f"{repo} config.json",
            repo=repo,
            tensors=tensors,
            weights_bytes=sum(sizes.get(s) or 0 for s in shards) or None,
            local=False,
            revision=sha,
            gguf=gguf_artifacts,
            allow_unknown=allow_unknown,
        )
        template = _chat_template(downloaded)
    else:
        assert first is not None
        built = assemble.from_gguf(
            matrix, name=repo, facts=first, where=f"{repo}/{gguf_artifacts[0].file}", artifacts=gguf_artifacts,
            allow_unknown=allow_unknown,
        )  # fmt: skip
        template = first.chat_template
    return ResolvedModel(
        model=built.model,
        source=Source.HUB,
        spec=repo,
        repo=repo,
        revision=sha,
        files=tuple(files),
        parameters_from=built.parameters_from,
        chat_template=template,
        architecture=built.architecture,
        warnings=built.warnings,
    )


def _gguf_groups(sizes: dict[str, int | None]) -> tuple[dict[str, list[str]], str | None]:
    groups: dict[str, list[str]] = {}
    mmprojs = sorted(f for f in sizes if f.endswith(".gguf") and is_mmproj(f))
    for f in sorted(sizes):
        if f.endswith(".gguf") and not is_mmproj(f):
            groups.setdefault(group_label(f), []).append(f)
    return groups, (mmprojs[0] if mmprojs else None)


def _read_ggufs(
    repo: str,
    sha: str,
    sizes: dict[str, int | None],
    groups: dict[str, list[str]],
    mmproj: str | None,
    files: list[str],
) -> tuple[list[Artifact], GgufFacts | None]:
    """One artifact per quantization. The first group's headers are read whole (shapes, tensors);
    the others only up to general.file_type (their quantization)."""
    artifacts: list[Artifact] = []
    first: GgufFacts | None = None
    for label, present in groups.items():
        names = part_names(present[0])
        missing = [n for n in names if n not in sizes]
        if missing:
            raise UsageError(f"{repo}: {label} is a {len(names)}-part GGUF but {', '.join(missing)} is not in the repo")
        if first is None:
            headers: list[Header] = []
            for name in names:
                with _errors(repo, None, name):
                    headers.append(read_header(RangeReader(repo, name, sha), f"{repo}/{name}"))
                files.append(f"{name} (header)")
            check_parts(headers, [f"{repo}/{n}" for n in names], [sizes.get(n) for n in names])
            first = facts(headers, f"{repo}/{names[0]}")
            quantization = first.quantization
        else:
            with _errors(repo, None, names[0]):
                head = read_header(RangeReader(repo, names[0], sha), f"{repo}/{names[0]}", until="general.file_type")
            files.append(f"{names[0]} (file type)")
            quantization = quantization_label(head) if "general.file_type" in head.fields else label
        total = sum(sizes.get(n) or 0 for n in names) + ((sizes.get(mmproj) or 0) if mmproj else 0)
        artifacts.append(
            Artifact(
                format=Format.GGUF,
                repo=repo,
                quantization=quantization,
                file=names[0],
                revision=sha,
                size_bytes=total or None,
                mmproj=mmproj,
            )
        )
    return artifacts, first


def _shards(sizes: dict[str, int | None], index: Path | None, repo: str) -> list[str]:
    if index is not None:
        data = hf_config.load(index, f"{repo} {INDEX}")
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UsageError(f"{repo} {INDEX} has no weight_map", hint="the safetensors index is damaged")
        return sorted(set(map(str, weight_map.values())))
    return sorted(f for f in sizes if f.endswith(".safetensors") and "/" not in f)


def _safetensors_header(api: Any, repo: str, shard: str, sha: str, revision: str | None) -> list[TensorEntry]:
    from huggingface_hub.errors import SafetensorsParsingError

    try:
        with _errors(repo, revision, shard):
            meta = api.parse_safetensors_file_metadata(repo, shard, revision=sha)
    except SafetensorsParsingError as error:
        detail = str(error).split("): ", 1)[-1]
        raise UsageError(
            f"{repo}/{shard}: the safetensors header cannot be read ({detail})",
            hint="the file on the hub is damaged; tell its owner, or pick another revision",
        ) from None
    return [TensorEntry(n, str(t.dtype), t.parameter_count) for n, t in meta.tensors.items()]


def _chat_template(downloaded: dict[str, Path]) -> bool:
    if "chat_template.jinja" in downloaded or "chat_template.json" in downloaded:
        return True
    config = downloaded.get("tokenizer_config.json")
    if config is None:
        return False
    try:
        data = hf_config.load(config, "tokenizer_config.json")
    except UsageError:
        return False
    return bool(data.get("chat_template"))


def _from_cache(matrix: Matrix, repo: str, revision: str | None, why: str, allow_unknown: bool) -> ResolvedModel:
    """The repo's snapshot in the HF cache, read like a local folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot = Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        snapshot = None
    where = f"{repo}@{revision}" if revision else repo
    if snapshot is None or not (snapshot / "config.json").is_file():
        raise PrerequisiteError(
            f"{where} is not in the local Hugging Face cache and {why}",
            hint="read it once with network (unset HF_HUB_OFFLINE, or point HF_ENDPOINT at a mirror), "
            "or pass a local folder or .gguf file",
        )
    resolved = read_folder(matrix, snapshot, name=repo, allow_unknown=allow_unknown, hub=(repo, snapshot.name))
    return _with(resolved, spec=repo, warning=f"read from the local cache: {why}")


def _with(resolved: ResolvedModel, *, spec: str, warning: str) -> ResolvedModel:
    return replace(resolved, spec=spec, warnings=(*resolved.warnings, warning))
