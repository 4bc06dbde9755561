"""Run inside an environment with transformers and Pillow: smoke-gemma3-vision shown a picture.

argv: the HF folder; prints one JSON object (loading info, processor classes, the prompt, shapes).
"""

import base64
import json
import struct
import sys
import zlib


def red_png(size: int = 32) -> bytes:
    """The picture envman's smoke request sends (envman.run.http.tiny_png)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = (b"\x00" + b"\xff\x00\x00" * size) * size
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main() -> None:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = sys.argv[1]
    model, info = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    processor = AutoProcessor.from_pretrained(path)
    url = "data:image/png;base64," + base64.b64encode(red_png()).decode()
    content = [{"type": "text", "text": "What colour is this picture?"}, {"type": "image", "url": url}]
    inputs = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True, return_dict=True,
        return_tensors="pt",
    )  # fmt: skip
    out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    prompt_length = inputs["input_ids"].shape[1]
    print(
        json.dumps(
            {
                "loading": {k: sorted(str(x) for x in v) for k, v in info.items()},
                "processor": [type(processor).__name__, type(processor.image_processor).__name__],
                "pixel_values": list(inputs["pixel_values"].shape),
                "prompt": processor.tokenizer.decode(inputs["input_ids"][0]),
                "new_tokens": out.shape[1] - prompt_length,
            }
        )
    )


if __name__ == "__main__":
    main()
