"""Fuzz every file type the app accepts through the code the app calls.

    python benchmarks/fuzz.py [--cases 300] [--model FOLDER] [--quick]

``--quick`` (what CI runs) fuzzes 5 copies per file type.

Valid PNG (8/16-bit), JPEG, TIFF (16-bit) and NIfTI files of the project's phantom are truncated,
bit-flipped and given the wrong extension, then passed to ``app.TranslationApp``. Each case must end
in a translation or in the library's clear ``InputImageError``; anything else is a failure. Prints
one JSON line per file type.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cyclegan.phantom import ellipse_slice  # noqa: E402


def seed_files() -> dict:
    """{name: (suffix, bytes, kind)} valid files of every accepted type."""
    from PIL import Image

    files = {}
    for name, fmt, suffix, bits in (("png8", "PNG", ".png", 8), ("png16", "PNG", ".png", 16),
                                     ("jpeg", "JPEG", ".jpg", 8), ("tiff16", "TIFF", ".tiff", 16)):
        image = ellipse_slice(64, 56) if bits == 8 else ellipse_slice(64, 56).astype(np.uint16) * 257
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt)
        files[name] = (suffix, buffer.getvalue(), "image")
    import nibabel as nib

    volume = np.stack([ellipse_slice(48, 40, i) for i in range(3)], -1).astype(np.float32)
    files["nifti"] = (".nii.gz", gzip.compress(nib.Nifti1Image(volume, np.eye(4)).to_bytes()), "volume")
    return files


def mutations(content: bytes, rng: random.Random, count: int):
    """Truncations, an empty file, then ``count`` random bit-flipped copies."""
    yield content[: len(content) // 2]
    yield content[:40]
    yield b""
    for _ in range(count):
        data = bytearray(content)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] ^= 1 << rng.randrange(8)
        yield bytes(data)


WRONG_SUFFIX = {".png": ".tiff", ".jpg": ".png", ".tiff": ".png", ".nii.gz": ".nii"}


def run_fuzz(app_logic, cases: int, seed: int = 0, folder=None) -> dict:
    """Fuzz each file type ``cases`` times; returns {type: counts and failures}."""
    from cyclegan.errors import InputImageError

    folder = Path(folder or tempfile.mkdtemp(prefix="fuzz-"))
    results = {}
    for name, (suffix, content, kind) in seed_files().items():
        rng = random.Random(f"{seed}-{name}")
        counts = {"cases": 0, "translated": 0, "refused": 0, "failures": []}
        for i, data in enumerate(mutations(content, rng, cases)):
            for ext in (suffix, WRONG_SUFFIX[suffix]):
                path = folder / f"{name}-{i}{ext}"
                path.write_bytes(data)
                counts["cases"] += 1
                try:
                    if kind == "image":
                        app_logic.translate_file(str(path), "t1_to_t2")
                    else:
                        app_logic.translate_volume(str(path), "t2_to_t1", "axial")
                except InputImageError as err:
                    if str(err):
                        counts["refused"] += 1
                    else:
                        counts["failures"].append(f"{path.name}: InputImageError without a message")
                except Exception as err:  # anything but the clear error is a failure
                    counts["failures"].append(f"{path.name}: {type(err).__name__}: {err}")
                else:
                    counts["translated"] += 1
                finally:
                    path.unlink(missing_ok=True)
        results[name] = counts
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300, help="bit-flipped copies per file type")
    parser.add_argument("--model", default=None, help="model folder or Hub repo (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 cases per file type (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases = 5
    import app
    from cyclegan.hub import load_generators

    logic = app.TranslationApp(load_generators(args.model))
    start = time.perf_counter()
    results = run_fuzz(logic, args.cases, args.seed)
    for name, counts in results.items():
        print(json.dumps({"bench": "fuzz", "file_type": name, "cases": counts["cases"],
                          "translated": counts["translated"], "refused_clearly": counts["refused"],
                          "failures": len(counts["failures"]), "examples": counts["failures"][:3]}), flush=True)
    total = sum(c["cases"] for c in results.values())
    failures = sum(len(c["failures"]) for c in results.values())
    print(json.dumps({"bench": "fuzz", "file_type": "all", "cases": total, "failures": failures,
                      "seconds": round(time.perf_counter() - start, 1)}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
