"""MODEL as a user writes it -> the Model to plan: a catalog name, a local path or a hub repo id.

Resolution order: a catalog name or alias (or a weights repo the catalog lists), then an
existing local path (a folder in HF layout, a .gguf file), then a hub repo id
``org/name[@revision]``. Everything but a catalog entry is read from the model's own
metadata; nothing is downloaded but metadata.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from envman.errors import UsageError
from envman.matrix.catalog import find_model, unknown_model
from envman.matrix.schema import Matrix
from envman.models.resolved import ResolvedModel, Source

REPO_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
FORMS = "; MODEL may also be a hub repo id (org/name[@revision]), a model folder or a .gguf file"


def resolve(matrix: Matrix, spec: str, *, model_path: Path | None = None, allow_unknown: bool = False) -> ResolvedModel:
    """Resolve ``spec``; with ``model_path`` the weights there are read and ``spec`` (if any) names them.

    ``allow_unknown`` returns a model of no known family (``model.family == ""``, the reason
    in ``warnings``) instead of raising :class:`~envman.models.family.UnknownArchitecture`.
    """
    wanted = spec.strip()
    if model_path is not None:
        return _named_local(matrix, wanted, model_path, allow_unknown)
    if not wanted:
        raise UsageError("no model given", hint="name a catalog model, a hub repo id, a folder or a .gguf file")
    match = REPO_ID.match(wanted)
    found = find_model(matrix, wanted) or (find_model(matrix, match["repo"]) if match and match["revision"] else None)
    if found is not None:
        model, repo = found
        revision = match["revision"] if match and repo else None
        if revision:
            artifacts = tuple(
                dataclasses.replace(a, revision=revision) if a.repo == repo else a for a in model.artifacts
            )
            model = dataclasses.replace(model, artifacts=artifacts)
        return ResolvedModel(model=model, source=Source.CATALOG, spec=wanted, repo=repo, revision=revision)
    path = Path(wanted).expanduser()
    if path.exists():
        from envman.models.local import read_path  # gguf and numpy: ~0.9 s, only for files

        return dataclasses.replace(read_path(matrix, path, allow_unknown=allow_unknown), spec=wanted)
    if _looks_like_path(wanted):
        raise UsageError(f"{path.absolute()} does not exist", hint="pass a .gguf file or a folder holding config.json")
    if match:
        from envman.models.hub import read_repo  # huggingface_hub, gguf and numpy: only for a repo id

        return dataclasses.replace(
            read_repo(matrix, match["repo"], match["revision"], allow_unknown=allow_unknown), spec=wanted
        )
    raise unknown_model(matrix, wanted, FORMS)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or spec.count("/") > 1 or "\\" in spec


def _named_local(matrix: Matrix, spec: str, model_path: Path, allow_unknown: bool) -> ResolvedModel:
    """``--model-path``: the weights there, under the name ``spec`` when one is given."""
    found = find_model(matrix, spec) if spec else None
    from envman.models.local import read_path

    local = read_path(matrix, model_path, allow_unknown=allow_unknown)
    if found is not None and local.model.family and found[0].family != local.model.family:
        catalog = found[0]
        raise UsageError(
            f"--model-path {model_path} holds a {local.model.family} model ({local.architecture}), "
            f"not {catalog.name} ({catalog.family})",
            hint="name the model the weights are, or leave MODEL out to plan from the weights alone",
        )
    name = found[0].name if found else (spec or local.model.name)
    return dataclasses.replace(local, model=dataclasses.replace(local.model, name=name), spec=spec or str(model_path))
