"""How long writing a colorized photo takes in each output format `chromalab colorize --format`
offers, and how large the file is: the measurement behind PNG level 1 as the lossless default and
the lossy choices (docs/benchmarks.md). A real photo (scikit-image's astronaut, colorized by the
released model) at 1 megapixel; the median of 7 writes each, on one core."""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    from chromalab.serving import model_choice

    torch.set_num_threads(1)
    runner, _ = model_choice.load(None, None, "cpu", root=ROOT)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((1024, 1024), Image.BICUBIC))
    rgb = runner(photo)
    image = Image.fromarray(rgb)
    choices = {"png level 1 (default)": dict(format="PNG", compress_level=1),
               "png level 6 (PIL's default)": dict(format="PNG", compress_level=6),
               "png level 1, optimize": dict(format="PNG", compress_level=1, optimize=True),
               "jpg quality 92, 4:4:4": dict(format="JPEG", quality=92, subsampling=0),
               "webp quality 92": dict(format="WEBP", quality=92)}
    results = {}
    for name, options in choices.items():
        times, size = [], 0
        for _ in range(7):
            buffer = io.BytesIO()
            start = time.perf_counter()
            image.save(buffer, **options)
            times.append(time.perf_counter() - start)
            size = buffer.tell()
        results[name] = {"seconds_per_megapixel": round(statistics.median(times) / (rgb.shape[0] * rgb.shape[1] / 1e6), 4),
                         "kilobytes": round(size / 1024)}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
