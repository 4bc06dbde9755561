"""Getting a model's weights onto the machine before any engine starts.

- a built-in smoke model is synthesized (:mod:`envman.synth`);
- ``--model-path`` serves local weights (checked first: an HF directory with a
  config.json, or a GGUF file);
- a catalog model comes from the Hugging Face hub through ``huggingface_hub``, which
  honours HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE; for a GGUF quantization only
  its file (and the other parts of a split file) is fetched.

A model that cannot be obtained (offline and not cached, gated, missing) fails here, with
what to do, before an environment is built or an engine started.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

from envman.errors import PrerequisiteError, TargetError, UsageError
from envman.files import confined
from envman.matrix.reader import is_relative_file, is_repo_id
from envman.matrix.schema import Artifact, Format, Model
from envman.report import NullReporter, Reporter

# What an engine needs from an HF-format repository (not the original checkpoints, images, …).
HF_PATTERNS = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.jinja", "*.py"]
_SPLIT = re.compile(r"^(?P<stem>.+)-00001-of-(?P<count>\d{5})\.gguf$")


def _resolved(path: Path) -> Path:
    """``path`` with every symbolic link followed; a loop or a dangling link is a UsageError."""
    given = path.expanduser()
    try:
        return given.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a loop so; 3.13 raises OSError(ELOOP)
        raise UsageError(f"--model-path {given} is a symbolic link loop") from None
    except FileNotFoundError:
        if given.is_symlink():
            target = given.resolve()
            raise UsageError(f"--model-path {given} is a symbolic link to {target}, which does not exist") from None
        raise UsageError(f"--model-path {given} does not exist") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UsageError(f"--model-path {given} is a symbolic link loop") from None
        raise UsageError(f"--model-path {given} cannot be read: {error.strerror}") from None


def _gguf_file(path: Path) -> Path:
    """A regular, readable file that starts with the GGUF magic (a FIFO would block the engine)."""
    if not path.is_file():
        raise UsageError(f"--model-path {path} is not a regular file", hint="GGUF weights are a .gguf file")
    if path.suffix != ".gguf":
        raise UsageError(f"{path} is not a GGUF file", hint="GGUF weights end in .gguf")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise UsageError(f"--model-path {path} cannot be read: {error.strerror}") from None
    if magic != b"GGUF":
        raise UsageError(f"{path} is not a GGUF file (it does not start with the GGUF magic)")
    return path


def check_local(path: Path, artifact: Artifact) -> Path:
    """``--model-path``: what the engine will be given, after checking it is usable."""
    path = _resolved(path)
    if artifact.format is Format.GGUF:
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            wanted = [p for p in ggufs if artifact.file and p.name == Path(artifact.file).name]
            if not ggufs:
                raise UsageError(f"{path} holds no .gguf file", hint="pass --model-path DIR/FILE.gguf")
            if wanted or len(ggufs) == 1:
                return _gguf_file(_resolved((wanted or ggufs)[0]))
            raise UsageError(
                f"{path} holds {len(ggufs)} GGUF files; name one",
                hint="pass --model-path DIR/FILE.gguf",
            )
        return _gguf_file(path)
    if not path.is_dir() or not (path / "config.json").is_file():
        raise UsageError(
            f"{path} is not a Hugging Face model directory (no config.json)",
            hint="pass the directory that holds config.json and the *.safetensors files",
        )
    return path


def obtain(
    model: Model, artifact: Artifact, *, model_path: Path | None = None, reporter: Reporter | None = None
) -> Path:
    reporter = reporter or NullReporter()
    if model_path is not None:
        return check_local(model_path, artifact)
    if model.smoke:
        from envman.synth import synthesize

        with reporter.status(f"synthesizing {model.name} ({artifact.label})"):
            return synthesize(model, artifact.format)
    if artifact.local_only:
        made_by = f" by {artifact.producer}" if artifact.producer else ""
        raise UsageError(
            f"{model.name} ({artifact.label}) is made locally{made_by}, not downloaded",
            hint="pass --model-path to the weights on this machine",
        )
    return download(artifact, reporter)


def _in_cache(path: Path, cache: str) -> Path:
    """``path`` if it (and the blob its snapshot link points at) lies in the hub cache."""
    if not path.resolve().is_relative_to(Path(cache).resolve()):
        raise UsageError(
            f"{path} lies outside the Hugging Face cache {cache}", hint="check the artifact in matrix.toml"
        )
    return path


def download(artifact: Artifact, reporter: Reporter) -> Path:
    """Fetch an artifact from the hub (or its cache) and return the path an engine loads."""
    from huggingface_hub import constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo = artifact.repo
    revision = getattr(artifact, "revision", None)  # the commit the plan read the metadata at
    where = f"{repo}/{artifact.file}" if artifact.file else repo
    # matrix.toml is validated at load; a Model made another way is checked again here.
    if not is_repo_id(repo) or (artifact.file is not None and not is_relative_file(artifact.file)):
        raise UsageError(
            f"{where!r} is not a hub repo id and a file inside it", hint="check the artifact in matrix.toml"
        )
    try:
        with reporter.status(f"downloading {where} (Hugging Face hub)"):
            if artifact.file:
                split = _SPLIT.match(artifact.file)
                if split:
                    snapshot = snapshot_download(
                        repo, revision=revision, allow_patterns=[f"{split['stem']}-*-of-{split['count']}.gguf"]
                    )
                    return _in_cache(
                        confined(Path(snapshot), artifact.file, follow_links=False), constants.HF_HUB_CACHE
                    )
                return _in_cache(Path(hf_hub_download(repo, artifact.file, revision=revision)), constants.HF_HUB_CACHE)
            return Path(snapshot_download(repo, revision=revision, allow_patterns=HF_PATTERNS))
    except GatedRepoError:
        raise PrerequisiteError(
            f"{repo} is gated on the Hugging Face hub",
            hint=f"accept its licence at https://huggingface.co/{repo} and set HF_TOKEN to a token of that account",
        ) from None
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise PrerequisiteError(
                f"{where} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set",
                hint="download it once with network (unset HF_HUB_OFFLINE), or pass --model-path",
            ) from None
        raise PrerequisiteError(
            f"could not download {where}: the hub ({constants.ENDPOINT}) cannot be reached and it is not cached",
            hint="check the network, point HF_ENDPOINT at a mirror, or pass --model-path",
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise TargetError(
            f"{repo} does not exist on the hub (or is private)",
            hint="check the repo id in matrix.toml; for a private repo set HF_TOKEN",
        ) from None
    except EntryNotFoundError:
        raise TargetError(f"{repo} has no file {artifact.file}", hint="check the file name in matrix.toml") from None
    except (HfHubHTTPError, OSError) as error:
        raise PrerequisiteError(
            f"could not download {where}: {error}",
            hint="check the network, HF_ENDPOINT and HF_TOKEN, or pass --model-path",
        ) from None
