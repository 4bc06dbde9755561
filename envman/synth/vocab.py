"""A byte-level BPE vocabulary in which every token decodes to valid UTF-8.

Random weights emit any token id, so no token may hold a partial UTF-8 sequence (an older
xllamacpp raised a JSON error on one). The alphabet is the printable ASCII bytes plus newline,
merges are built from a fixed rule (no corpus), and the rest of the ids are special tokens.
Both engines see the same tokens: HF through tokenizer.json, llama.cpp through the GGUF
``tokenizer.ggml.*`` keys with the GPT-2 pre-tokenizer.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

UNK, BOS, EOS, PAD = "<unk>", "<bos>", "<eos>", "<pad>"
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
SPECIALS = (UNK, BOS, EOS, PAD, TURN_START, TURN_END)

# ChatML: llama.cpp recognizes it by "<|im_start|>" in its built-in template detection and marks
# "<|im_end|>" end-of-generation by name, so both engines stop at the end of a turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# GPT-2's byte-to-unicode table, restricted to the bytes the vocabulary keeps: printable ASCII
# maps to itself except space (U+0120 'Ġ'); newline is U+010A 'Ċ'.
SPACE, NEWLINE = "\u0120", "\u010a"
ALPHABET = (NEWLINE, SPACE, *(chr(b) for b in range(0x21, 0x7F)))

# llama.cpp token types (gguf.TokenType): NORMAL and CONTROL
NORMAL, CONTROL = 1, 3

# How text is split before BPE, by its llama.cpp name (tokenizer.ggml.pre). "gpt-2" is GPT-2's
# regex, which tokenizer.json's ByteLevel pre-tokenizer applies. "qwen2" is Qwen2's regex (digits
# one by one): transformers 5 loads a qwen2 checkpoint with its own Qwen2Tokenizer, which sets
# that regex whatever tokenizer.json says, so qwen models carry it in both files.
GPT2, QWEN2 = "gpt-2", "qwen2"
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class Vocab:
    tokens: tuple[str, ...]  # byte-level symbols, index = id
    merges: tuple[tuple[str, str], ...]  # rank order
    special_count: int  # ids [0, special_count) are special tokens

    def id(self, token: str) -> int:
        return self.tokens.index(token)

    @property
    def token_types(self) -> list[int]:
        return [CONTROL if i < self.special_count else NORMAL for i in range(len(self.tokens))]


def _merge_candidates() -> list[tuple[str, str]]:
    """Merges in rank order: a space before a letter or digit, letter pairs, then 'Ġ' + pair."""
    lower, upper = string.ascii_lowercase, string.ascii_uppercase
    out = [(SPACE, c) for c in lower + upper + string.digits]
    out += [(a, b) for a in lower for b in lower]
    out += [(SPACE + a, b) for a in lower for b in lower]
    return out


def build_vocab(size: int, extra: tuple[str, ...] = ()) -> Vocab:
    """``size`` tokens: the specials (``extra`` ones after the common ones), reserved control
    tokens, the alphabet, then merges (as many as fit)."""
    specials = (*SPECIALS, *extra)
    base = len(specials) + len(ALPHABET)
    if size < base:
        raise ValueError(f"a vocabulary needs at least {base} tokens, not {size}")
    merges = _merge_candidates()[: size - base]
    reserved = [f"<|reserved_{i}|>" for i in range(size - base - len(merges))]
    tokens = (*specials, *reserved, *ALPHABET, *(a + b for a, b in merges))
    assert len(set(tokens)) == size
    return Vocab(tokens=tokens, merges=tuple(merges), special_count=len(specials) + len(reserved))


def _byte_level(symbol: str) -> str:
    """The text a byte-level symbol stands for (only the two remapped bytes differ)."""
    return symbol.replace(SPACE, " ").replace(NEWLINE, "\n")


def decoded(vocab: Vocab, token_id: int) -> bytes:
    """The bytes token ``token_id`` decodes to (a special token decodes to its own text)."""
    token = vocab.tokens[token_id]
    return (token if token_id < vocab.special_count else _byte_level(token)).encode("utf-8")


def tokenizer_json(vocab: Vocab, pre: str) -> dict[str, Any]:
    """tokenizer.json for the ``tokenizers`` library, in the format every release reads."""
    added = [
        {
            "id": i,
            "content": vocab.tokens[i],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i in range(vocab.special_count)
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    normalizer: dict[str, Any] | None = None
    pre_tokenizer: dict[str, Any] = byte_level
    if pre == QWEN2:  # as Qwen2Tokenizer builds it
        normalizer = {"type": "NFC"}
        split = {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False}
        pre_tokenizer = {"type": "Sequence", "pretokenizers": [split, {**byte_level, "use_regex": False}]}
    elif pre != GPT2:
        raise ValueError(f"unknown pre-tokenizer {pre!r}")
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {**byte_level, "trim_offsets": False},
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": UNK,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": {token: i for i, token in enumerate(vocab.tokens)},
            # "a b" strings, not pairs: tokenizers < 0.20 reads only this form
            "merges": [f"{a} {b}" for a, b in vocab.merges],
        },
    }


def tokenizer_config(vocab: Vocab, max_length: int, pre: str) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": UNK,
        # No BOS anywhere: vLLM tokenizes a chat prompt without special tokens, llama.cpp adds
        # one only if tokenizer.ggml.add_bos_token says so; both then see the same ids.
        "add_bos_token": False,
        "add_eos_token": False,
        # llama.cpp removes the space before punctuation when decoding for "gpt-2", not for "qwen2"
        "clean_up_tokenization_spaces": pre == GPT2,
        "model_max_length": max_length,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {
            str(i): {
                "content": vocab.tokens[i],
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i in range(vocab.special_count)
        },
    }


def dumps(data: dict[str, Any]) -> bytes:
    """Deterministic JSON bytes (sorted keys, UTF-8)."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
