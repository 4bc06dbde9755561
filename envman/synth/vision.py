"""The vision-language form of a smoke model: Gemma 3's SigLIP tower and projector beside the text model.

Names and layout are those of the released checkpoints (transformers 4.50.0, the release that
added Gemma 3: ``language_model.model.*``, ``vision_tower.vision_model.*``,
``multi_modal_projector.*``; transformers 5 renames them on load). The processor files make
``AutoProcessor`` build a ``Gemma3Processor``, which turns each ``<start_of_image>`` of the chat
template into the image's soft tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envman.matrix.schema import Model
    from envman.synth.weights import F32, Weights

BOI, EOI, IMAGE = "<start_of_image>", "<end_of_image>", "<image_soft_token>"
SPECIALS = (BOI, EOI, IMAGE)

# A 28x28 picture in 14x14 patches: 4 patches, pooled to 4 soft tokens (kernel 1)
IMAGE_SIZE, PATCH_SIZE, IMAGE_TOKENS = 28, 14, 4
HIDDEN, INTERMEDIATE, HEADS, LAYERS = 128, 256, 2, 1
LAYER_NORM_EPS = 1e-6

# ChatML as the text models have it, with content parts: an image part becomes <start_of_image>
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '" + BOI + "' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def config(text: dict[str, Any], token_id: dict[str, int]) -> dict[str, Any]:
    """Gemma3Config: the text model's config as ``text_config``, a SigLIP ``vision_config``."""
    text_config = {k: v for k, v in text.items() if k not in ("architectures", "torch_dtype")}
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": text_config,
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": HIDDEN,
            "intermediate_size": INTERMEDIATE,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "num_channels": 3,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "hidden_act": "gelu_pytorch_tanh",
            "layer_norm_eps": LAYER_NORM_EPS,
            "attention_dropout": 0.0,
            "vision_use_head": False,
        },
        "mm_tokens_per_image": IMAGE_TOKENS,
        "boi_token_index": token_id[BOI],
        "eoi_token_index": token_id[EOI],
        "image_token_index": token_id[IMAGE],
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "bos_token_id": text["bos_token_id"],
        "eos_token_id": text["eos_token_id"],
        "pad_token_id": text["pad_token_id"],
    }


def tensors(model: Model, weights: Weights, text: dict[str, F32]) -> dict[str, F32]:
    """The text model's tensors under ``language_model.``, then the vision tower's and the projector's."""
    out = {"language_model." + name: data for name, data in text.items()}
    v = "vision_tower.vision_model."

    def norm(size: int, mean: float = 1.0) -> F32:
        return weights.uniform((size,), std=0.05, mean=mean)

    def linear(rows: int, cols: int) -> F32:
        return weights.uniform((rows, cols), std=0.02)

    def bias(size: int) -> F32:
        return weights.uniform((size,), std=0.02)

    out[v + "embeddings.patch_embedding.weight"] = weights.uniform((HIDDEN, 3, PATCH_SIZE, PATCH_SIZE), std=0.02)
    out[v + "embeddings.patch_embedding.bias"] = bias(HIDDEN)
    out[v + "embeddings.position_embedding.weight"] = linear((IMAGE_SIZE // PATCH_SIZE) ** 2, HIDDEN)
    for i in range(LAYERS):
        p = f"{v}encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[f"{p}self_attn.{name}.weight"] = linear(HIDDEN, HIDDEN)
            out[f"{p}self_attn.{name}.bias"] = bias(HIDDEN)
        for name in ("layer_norm1", "layer_norm2"):  # LayerNorm: weight and bias
            out[f"{p}{name}.weight"] = norm(HIDDEN)
            out[f"{p}{name}.bias"] = bias(HIDDEN)
        out[p + "mlp.fc1.weight"] = linear(INTERMEDIATE, HIDDEN)
        out[p + "mlp.fc1.bias"] = bias(INTERMEDIATE)
        out[p + "mlp.fc2.weight"] = linear(HIDDEN, INTERMEDIATE)
        out[p + "mlp.fc2.bias"] = bias(HIDDEN)
    out[v + "post_layernorm.weight"] = norm(HIDDEN)
    out[v + "post_layernorm.bias"] = bias(HIDDEN)
    # Gemma3MultiModalProjector: [vision hidden, text hidden]; its RMSNorm scales by (1 + w)
    out["multi_modal_projector.mm_input_projection_weight"] = linear(HIDDEN, model.hidden_size)
    out["multi_modal_projector.mm_soft_emb_norm.weight"] = norm(HIDDEN, mean=0.0)
    return out


def preprocessor_config() -> dict[str, Any]:
    """preprocessor_config.json: Gemma3ImageProcessor at the tower's size, SigLIP's normalization."""
    return {
        "image_processor_type": "Gemma3ImageProcessor",
        "processor_class": "Gemma3Processor",
        "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_resize": True,
        "resample": 2,  # bilinear
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_convert_rgb": True,
        "do_pan_and_scan": False,
    }


def processor_config() -> dict[str, Any]:
    """processor_config.json; the processor's own chat template (the tokenizer's is not used for it)."""
    return {"processor_class": "Gemma3Processor", "image_seq_length": IMAGE_TOKENS, "chat_template": CHAT_TEMPLATE}


def tokenizer_extras() -> dict[str, Any]:
    """tokenizer_config.json keys Gemma3Processor reads (``tokenizer.boi_token`` and so on)."""
    return {
        "extra_special_tokens": {"boi_token": BOI, "eoi_token": EOI, "image_token": IMAGE},
        "chat_template": CHAT_TEMPLATE,
        "processor_class": "Gemma3Processor",
    }
