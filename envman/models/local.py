"""Models on this machine: a folder in Hugging Face layout, or a GGUF file (single or split)."""

from __future__ import annotations

import json
from pathlib import Path

from envman.errors import UsageError
from envman.matrix.schema import Artifact, Format, Matrix
from envman.models import assemble, hf_config
from envman.models.gguf_header import Header, read_header
from envman.models.gguf_model import check_parts, facts, group_label, is_mmproj, part_names
from envman.models.resolved import ResolvedModel, Source
from envman.models.tensors import TensorEntry

INDEX = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "qwen.tiktoken")


def read_path(matrix: Matrix, path: Path, *, name: str | None = None, allow_unknown: bool = False) -> ResolvedModel:
    """A local folder or GGUF file; ``name`` defaults to one derived from the path."""
    path = path.expanduser().absolute()
    if not path.exists():
        raise UsageError(f"{path} does not exist", hint="pass a .gguf file or a folder holding config.json")
    if path.is_dir() and not (path / "config.json").is_file():
        groups = sorted({group_label(p.name): p for p in path.glob("*.gguf") if not is_mmproj(p.name)}.items())
        if len(groups) == 1:
            return read_gguf(matrix, groups[0][1], name=name, allow_unknown=allow_unknown)
        found = (
            f"{len(groups)} GGUF models ({', '.join(g for g, _ in groups)}); name one" if groups else "no config.json"
        )
        raise UsageError(
            f"{path} is not a Hugging Face model folder: {found}",
            hint="pass the folder that holds config.json and the *.safetensors files, or a .gguf file",
        )
    if path.is_dir():
        return read_folder(matrix, path, name=name, allow_unknown=allow_unknown)
    return read_gguf(matrix, path, name=name, allow_unknown=allow_unknown)


def safetensors_files(folder: Path) -> list[Path]:
    """The shards the index names, else every *.safetensors at the top of the folder."""
    index = folder / INDEX
    if index.is_file():
        data = hf_config.load(index, str(index))
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UsageError(f"{index} has no weight_map", hint="the safetensors index is damaged")
        return [folder / f for f in sorted(set(map(str, weight_map.values())))]
    return sorted(folder.glob("*.safetensors"))


def read_safetensors(files: list[Path]) -> list[TensorEntry]:
    from huggingface_hub import parse_local_safetensors_file_metadata
    from huggingface_hub.errors import SafetensorsParsingError

    entries: list[TensorEntry] = []
    for file in files:
        if not file.is_file():
            raise UsageError(f"{file} is missing: {INDEX} lists it", hint="copy or download every shard")
        try:
            meta = parse_local_safetensors_file_metadata(file)
        except (SafetensorsParsingError, OSError, ValueError) as error:
            raise UsageError(
                f"{file}: the safetensors header cannot be read ({_short(error)})",
                hint="the file is damaged or truncated; copy or download it again",
            ) from None
        entries.extend(TensorEntry(n, str(t.dtype), t.parameter_count) for n, t in meta.tensors.items())
    return entries


def chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return False
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


def read_folder(
    matrix: Matrix,
    folder: Path,
    *,
    name: str | None = None,
    allow_unknown: bool = False,
    hub: tuple[str, str | None] | None = None,  # (repo, revision) when the folder is a hub cache snapshot
) -> ResolvedModel:
    config = hf_config.load(folder / "config.json", str(folder / "config.json"))
    shards = safetensors_files(folder)
    present = [s for s in shards if s.is_file()]
    bins = sorted(folder.glob("*.bin"))
    warnings: list[str] = []
    tensors: list[TensorEntry] | None
    if shards and (hub is None or len(present) == len(shards)):
        tensors = read_safetensors(shards)
        files = [f"{s.name} (header)" for s in shards]
    elif hub is not None or bins:
        tensors, files = None, []
    else:
        raise UsageError(
            f"{folder} holds no weights (no *.safetensors or *.bin files)",
            hint="pass the folder with the model's weight files",
        )
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        warnings.append(f"{folder} has no tokenizer file ({', '.join(TOKENIZER_FILES[:3])} …): engines need one")
    repo = hub[0] if hub else str(folder)
    where = f"{hub[0]} config.json (cached)" if hub else str(folder / "config.json")
    built = assemble.from_config(
        matrix,
        name=name or (hub[0] if hub else folder.name),
        config=config,
        where=where,
        repo=repo,
        tensors=tensors,
        weights_bytes=sum(s.stat().st_size for s in present) or None,
        local=hub is None,
        revision=hub[1] if hub else None,
        allow_unknown=allow_unknown,
    )
    return ResolvedModel(
        model=built.model,
        source=Source.HUB if hub else Source.FOLDER,
        spec=str(folder),
        repo=hub[0] if hub else None,
        revision=hub[1] if hub else None,
        path=folder,
        files=("config.json", *files),
        parameters_from=built.parameters_from,
        chat_template=chat_template(folder),
        architecture=built.architecture,
        warnings=built.warnings + tuple(warnings),
    )


def read_gguf(matrix: Matrix, path: Path, *, name: str | None = None, allow_unknown: bool = False) -> ResolvedModel:
    if is_mmproj(path.name):
        raise UsageError(
            f"{path} is a vision projector (mmproj), not a model",
            hint="pass the model's .gguf; envman finds the mmproj file beside it",
        )
    names = part_names(path.name)
    folder = path.parent
    headers: list[Header] = []
    sizes: list[int | None] = []
    for n, part in enumerate(names, start=1):
        file = folder / part
        if not file.is_file():
            raise UsageError(f"{file} is missing: {path.name} is part of a {len(names)}-part GGUF (part {n} absent)")
        with file.open("rb") as handle:
            headers.append(read_header(handle, str(file)))
        sizes.append(file.stat().st_size)
    check_parts(headers, [str(folder / p) for p in names], sizes)
    read = facts(headers, str(path))
    mmprojs = sorted(p for p in folder.glob("*.gguf") if is_mmproj(p.name))
    mmproj = mmprojs[0] if mmprojs else None
    artifact = Artifact(
        format=Format.GGUF,
        repo=str(folder),
        quantization=read.quantization,
        file=names[0],
        local_only=True,
        size_bytes=sum(s or 0 for s in sizes) + (mmproj.stat().st_size if mmproj else 0),
        mmproj=mmproj.name if mmproj else None,
    )
    built = assemble.from_gguf(
        matrix,
        name=name or group_label(names[0]),
        facts=read,
        where=str(path),
        artifacts=[artifact],
        allow_unknown=allow_unknown,
    )
    warnings = list(built.warnings)
    if len(mmprojs) > 1:
        warnings.append(f"{len(mmprojs)} mmproj files beside it; using {mmprojs[0].name}")
    return ResolvedModel(
        model=built.model,
        source=Source.GGUF,
        spec=str(path),
        path=folder / names[0],
        files=tuple(f"{p} (header)" for p in names) + ((f"{mmproj.name} (found)",) if mmproj else ()),
        parameters_from=built.parameters_from,
        chat_template=read.chat_template,
        architecture=built.architecture,
        warnings=tuple(warnings),
    )


def _short(error: Exception) -> str:
    text = str(error)
    return text.split(": ", 1)[-1] if "Failed to parse safetensors header" in text else text
