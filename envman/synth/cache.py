"""Where synthesized models live, and how one appears there whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from envman import paths
from envman.errors import UsageError
from envman.files import confined, ensure_dir, unusable
from envman.matrix.schema import Format, Model
from envman.synth import architectures, gguf_file, safetensors_file, vision, vocab
from envman.synth.weights import Weights

# Bump when the bytes written for the same model change: old cache entries are then not reused.
SYNTH_VERSION = 1
HF_DIR = "hf"
ABANDONED_AFTER_S = 3600  # a synthesis takes about a second


def gguf_name(model: Model) -> str:
    """The GGUF file name: the artifact's ``file`` where the catalog names one."""
    for artifact in model.artifacts:
        if artifact.format is Format.GGUF and artifact.file:
            return artifact.file
    return f"{model.name}-F16.gguf"


def digest(model: Model) -> str:
    """Names the cache entry: the synthesizer version and everything the bytes depend on."""
    shape = {
        "synth_version": SYNTH_VERSION,
        "name": model.name,
        "architecture": model.hf_architecture,
        "layers": model.layers,
        "hidden_size": model.hidden_size,
        "attention_heads": model.attention_heads,
        "kv_heads": model.kv_heads,
        "head_dim": model.head_dim,
        "vocab_size": model.vocab_size,
        "max_context": model.max_context,
        "gguf_file": gguf_name(model),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def entry(model: Model, root: Path | None = None) -> Path:
    """The cache directory of ``model`` (it may not exist yet)."""
    models = (root if root is not None else paths.home()) / "models"
    return confined(models, f"{model.name}/{digest(model)}")


def synthesize(model: Model, fmt: Format, *, root: Path | None = None) -> Path:
    """The HF directory (``Format.PYTORCH``) or GGUF file (``Format.GGUF``) of a smoke model.

    Made on first use under ``root`` (default ENVMAN_HOME), then reused. Deterministic: the
    weights are seeded by the model's name, so every file has the same bytes on every host.
    """
    if fmt not in (Format.PYTORCH, Format.GGUF):
        raise UsageError(f"cannot synthesize {model.name} as {fmt.value}: only pytorch and gguf are made locally")
    if not model.smoke:
        raise UsageError(
            f"cannot synthesize {model.name}: it is not a smoke model",
            hint="only catalog entries with smoke = true are made locally; download the others",
        )
    recipe = architectures.recipe_for(model)
    if fmt is Format.GGUF and not any(a.format is Format.GGUF for a in model.artifacts):
        raise UsageError(
            f"cannot synthesize {model.name} as gguf: it has no gguf artifact",
            hint="a vision-language smoke model is made in HF form only (llama.cpp would need an mmproj file)",
        )
    if root is None:
        paths.state_dir("models")
    final = entry(model, root)
    confined(final, gguf_name(model))  # before anything is written: the catalog's file name stays inside
    if not final.is_dir():
        ensure_dir(final.parent)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        except OSError as error:
            raise unusable(final.parent, error) from None
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the entry is an ordinary cache directory
            _write(model, recipe, staging)
            try:
                os.replace(staging, final)  # a directory appears complete or not at all
            except OSError:
                if not final.is_dir():  # another process won the race with the same bytes
                    raise
        except OSError as error:  # a full disk, a folder made read-only meanwhile
            raise unusable(final, error) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_abandoned(final)
    return final / HF_DIR if fmt is Format.PYTORCH else confined(final, gguf_name(model))


def _remove_abandoned(final: Path) -> None:
    """Staging directories a killed synthesis left beside ``final`` (old enough to be nobody's)."""
    cutoff = time.time() - ABANDONED_AFTER_S
    for leftover in final.parent.glob(f".{final.name}.*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover)


def _write(model: Model, recipe: architectures.Recipe, target: Path) -> None:
    extra = vision.SPECIALS if recipe.text_model else ()
    voc = vocab.build_vocab(model.vocab_size, extra)
    eos_ids = (voc.id(vocab.EOS), voc.id(vocab.TURN_END))
    bos, pad = voc.id(vocab.BOS), voc.id(vocab.PAD)
    tensors = architectures.hf_tensors(model, recipe, Weights(model.name))

    hf = target / HF_DIR
    hf.mkdir()
    specials = {token: voc.id(token) for token in extra}
    config = architectures.hf_config(model, recipe, eos_ids, bos=bos, pad=pad, specials=specials)
    generation = {"bos_token_id": bos, "eos_token_id": list(eos_ids), "pad_token_id": pad}
    (hf / "config.json").write_bytes(vocab.dumps(config))
    (hf / "generation_config.json").write_bytes(vocab.dumps(generation))
    pre = recipe.pre_tokenizer
    (hf / "tokenizer.json").write_bytes(vocab.dumps(vocab.tokenizer_json(voc, pre)))
    tokenizer_config = vocab.tokenizer_config(voc, model.max_context, pre)
    if recipe.text_model:
        tokenizer_config |= vision.tokenizer_extras()
        (hf / "preprocessor_config.json").write_bytes(vocab.dumps(vision.preprocessor_config()))
        (hf / "processor_config.json").write_bytes(vocab.dumps(vision.processor_config()))
    (hf / "tokenizer_config.json").write_bytes(vocab.dumps(tokenizer_config))
    (hf / "special_tokens_map.json").write_bytes(
        vocab.dumps({"bos_token": vocab.BOS, "eos_token": vocab.EOS, "pad_token": vocab.PAD, "unk_token": vocab.UNK})
    )
    safetensors_file.write(hf / "model.safetensors", tensors)
    if not any(a.format is Format.GGUF for a in model.artifacts):
        return  # a vision-language model: llama.cpp would need the vision tower as an mmproj file too
    gguf = confined(target, gguf_name(model))
    gguf.parent.mkdir(parents=True, exist_ok=True)  # inside the staging folder: it appears with it
    gguf_file.write(gguf, model, recipe, voc, tensors, eos_ids)
