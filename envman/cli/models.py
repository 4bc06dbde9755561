"""``envman models``: the model catalog."""

from __future__ import annotations

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import out, print_json


@app.command("models")
def models(matrix: MatrixOption = None, json: JsonOption = False) -> None:
    """List the catalog: name, family, size, modalities and the formats its weights come in."""
    loaded = load(matrix)
    if json:
        print_json(
            [
                {
                    "name": m.name,
                    "family": m.family,
                    "hf_architecture": m.hf_architecture,
                    "params_b": m.params_b,
                    "active_params_b": m.active_params_b,
                    "layers": m.layers,
                    "hidden_size": m.hidden_size,
                    "attention_heads": m.attention_heads,
                    "kv_heads": m.kv_heads,
                    "head_dim": m.head_dim,
                    "vocab_size": m.vocab_size,
                    "max_context": m.max_context,
                    "modalities": [x.value for x in m.modalities],
                    "trust_remote_code": m.trust_remote_code,
                    "smoke": m.smoke,
                    "artifacts": [
                        {
                            "format": a.format.value,
                            "repo": a.repo,
                            "quantization": a.quantization,
                            "quant_method": a.quant_method,
                            "file": a.file,
                            "local_only": a.local_only,
                        }
                        for a in m.artifacts
                    ],
                }
                for m in loaded.models.values()
            ]
        )
        return
    width = max(len(n) for n in loaded.models) + 2
    for m in loaded.models.values():
        formats = ", ".join(a.label for a in m.artifacts)
        size = f"{m.params_b:g}B" if m.params_b >= 0.1 else "tiny"
        out.print(
            f"{m.name.ljust(width)}{m.family.ljust(13)}{size.rjust(7)}  "
            f"{'+'.join(x.value for x in m.modalities):<11} {formats}",
            markup=False,
        )
