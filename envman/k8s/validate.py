"""Manifests checked before they are printed: standard kinds against the Kubernetes OpenAPI
schemas (kubernetes-validate, offline), the LeaderWorkerSet against its CRD schema shipped
beside this module, and its pod templates as core/v1 PodTemplates."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from envman.errors import TargetError

KUBERNETES_VERSION = "1.30.0"  # the schemas checked against (kubernetes-validate ships 1.x schemas)


@cache
def _lws_schema() -> dict[str, Any]:
    text = files("envman.k8s").joinpath("leaderworkerset-v1.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def problems(documents: list[dict[str, Any]]) -> list[str]:
    """Every schema problem of ``documents``, as "Kind/name: message" lines (empty: valid)."""
    import jsonschema
    import kubernetes_validate

    found: list[str] = []

    def standard(document: dict[str, Any], where: str) -> None:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            found.append(f"{where}: {error.message} at {'.'.join(str(p) for p in error.path)}")

    for document in documents:
        where = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
        if document.get("kind") != "LeaderWorkerSet":
            standard(document, where)
            continue
        validator = jsonschema.Draft202012Validator(_lws_schema())
        for error in validator.iter_errors(document):
            found.append(f"{where}: {error.message} at {'.'.join(str(p) for p in error.absolute_path)}")
        template = document.get("spec", {}).get("leaderWorkerTemplate", {})
        for part in ("leaderTemplate", "workerTemplate"):
            if part in template:
                pod_template = {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": f"{document['metadata']['name']}-{part.lower()}"},
                    "template": template[part],
                }
                standard(pod_template, f"{where} {part}")
    return found


def check(documents: list[dict[str, Any]]) -> None:
    """Raise (exit 1) if envman generated an invalid manifest: a bug, never printed as valid."""
    found = problems(documents)
    if found:
        raise TargetError("the generated manifests do not validate:\n" + "\n".join(f"  {p}" for p in found))
