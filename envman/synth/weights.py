"""Deterministic random tensors that bfloat16 and float16 both hold exactly.

The HF checkpoint stores bfloat16, the GGUF float16. A bfloat16 value has 8 significant bits,
so every one whose magnitude is at least 2**-14 (float16's smallest normal) is also exactly a
float16: values below that are flushed to zero, and both files then hold the same numbers.
The stream comes from a bit generator's raw output, which numpy keeps stable across releases
(its distribution methods may change).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F32 = npt.NDArray[np.float32]

F16_MIN_NORMAL = 2.0**-14


class Weights:
    """A seeded source of tensors, drawn in call order (so the order is part of the output)."""

    def __init__(self, seed_text: str) -> None:
        import numpy as np

        seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
        self._bits = np.random.PCG64(seed)

    def uniform(self, shape: tuple[int, ...], std: float, mean: float = 0.0) -> F32:
        """Uniform values with the given mean and standard deviation, rounded to bfloat16."""
        import numpy as np

        count = math.prod(shape)
        raw = self._bits.random_raw(count)
        unit = (np.asarray(raw, dtype=np.uint64) >> np.uint64(40)).astype(np.float64) / float(1 << 24)
        half_width = std * math.sqrt(3.0)
        values = (mean + (unit * 2.0 - 1.0) * half_width).astype(np.float32).reshape(shape)
        return to_bf16_values(values)


def to_bf16_values(values: F32) -> F32:
    """``values`` rounded to the nearest bfloat16 (ties to even), tiny ones flushed to zero."""
    import numpy as np

    flushed = np.where(np.abs(values) < F16_MIN_NORMAL, np.float32(0.0), values).astype(np.float32)
    bits = flushed.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    result: F32 = rounded.view(np.float32)
    return result


def bf16_bytes(values: F32) -> bytes:
    """Little-endian bfloat16 bytes of values already rounded by :func:`to_bf16_values`."""
    import numpy as np

    upper = (np.ascontiguousarray(values, dtype="<f4").view("<u4") >> np.uint32(16)).astype("<u2")
    return upper.tobytes()
