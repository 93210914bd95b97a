"""Soak test: the app on loopback under steady load from several gradio_client clients.

    python benchmarks/soak.py [--minutes 3] [--clients 4] [--model FOLDER] [--quick]

Clients mix both tabs, small NIfTI volumes and bad inputs (constant image, corrupt file). Prints
one JSON line per request kind and a summary: requests served, unexpected errors, bad inputs refused,
p50/p95 latency and the app's memory at start and end. The memory bound: RSS may grow at most
``--rss-bound-mb`` from the end of warm-up (every kind of request from every client at once) to
the end of the run; the summary gives the peak RSS by minute, so a leak (still climbing) can be
told from a warm-up (levelling off). ``--quick`` (what CI runs): two
clients for 20 seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.speed import MACHINE, rss_mb  # noqa: E402


def make_inputs(folder: Path) -> dict:
    import gzip

    import nibabel as nib
    from PIL import Image

    from cyclegan.phantom import ellipse_slice

    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(folder / "constant.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    volume = np.stack([ellipse_slice(96, 80, i).T for i in range(12)], -1).astype(np.float32)
    (folder / "volume.nii.gz").write_bytes(gzip.compress(nib.Nifti1Image(volume, np.eye(4)).to_bytes()))
    return {
        "t1_to_t2": str(ROOT / "examples" / "t1w_openmslong04_z028.png"),
        "t2_to_t1": str(ROOT / "examples" / "t2w_openmscs07_z088.png"),
        "volume": str(folder / "volume.nii.gz"),
        "bad_constant": str(folder / "constant.png"),
        "bad_corrupt": str(folder / "corrupt.png"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rss-bound-mb", type=float, default=150.0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--quick", action="store_true", help="two clients for 20 seconds (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.clients = 1 / 3, 2
    from gradio_client import Client, handle_file

    if args.model:
        os.environ["CYCLEGAN_MODEL"] = args.model
    inputs = make_inputs(Path(tempfile.mkdtemp(prefix="soak-")))
    from benchmarks._harness import spawn

    proc, url = spawn()
    if url is None:
        raise RuntimeError("the app exited at start")
    results = {kind: [] for kind in inputs}
    errors, lock = [], threading.Lock()
    stop = float("inf")  # set once the app is warm: the run lasts --minutes of serving
    kinds = ["t1_to_t2", "t2_to_t1", "t1_to_t2", "t2_to_t1", "volume", "bad_constant", "bad_corrupt"]

    def call(client, kind):
        path = handle_file(inputs[kind])
        if kind == "volume":
            return client.predict(path, "t1_to_t2", "axial", api_name="/volume")
        api = "/t2_to_t1" if kind == "t2_to_t1" else "/t1_to_t2"
        return client.predict(path, api_name=api)

    def worker(index):
        rng = random.Random(index)
        client = Client(url, verbose=False)
        while time.monotonic() < stop:
            kind = rng.choice(kinds)
            start = time.perf_counter()
            try:
                call(client, kind)
                ok = not kind.startswith("bad_")  # a bad input that "works" is an error
            except Exception as err:
                ok = kind.startswith("bad_") and ("constant" in str(err) or "readable" in str(err))
                if not ok:
                    with lock:
                        errors.append(f"{kind}: {type(err).__name__}: {str(err)[:200]}")
            with lock:
                results[kind].append((time.perf_counter() - start, ok))

    try:
        # Warm-up as the run will serve: every kind of request from every client at once, so the
        # app's worker threads, compiled shapes and allocator pools exist before the clock starts.
        def warm_up(index):
            client = Client(url, verbose=False)
            for kind in kinds[index % len(kinds):] + kinds[:index % len(kinds)]:
                try:
                    call(client, kind)
                except Exception:  # the bad inputs; the run itself counts errors
                    pass

        warmers = [threading.Thread(target=warm_up, args=(i,)) for i in range(args.clients)]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
        rss_start = rss_mb(proc.pid)
        begin = time.monotonic()
        stop = begin + 60 * args.minutes
        samples = [(0.0, rss_start)]
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5)
            samples.append((time.monotonic() - begin, rss_mb(proc.pid)))
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    total = 0
    for kind, rows in results.items():
        if not rows:
            continue
        latencies = np.array([r[0] for r in rows])
        total += len(rows)
        print(json.dumps({"bench": "soak", "machine": MACHINE, "kind": kind, "requests": len(rows),
                          "as_expected": sum(r[1] for r in rows),
                          "p50_s": round(float(np.percentile(latencies, 50)), 3),
                          "p95_s": round(float(np.percentile(latencies, 95)), 3)}), flush=True)
    growth = rss_end - rss_start
    # RSS at the end of each minute of serving: a leak keeps climbing, a warm-up levels off
    by_minute = [round(max(r for t, r in samples if t <= 60 * (m + 1)), 1)
                 for m in range(int(np.ceil(args.minutes)))]
    print(json.dumps({"bench": "soak", "machine": MACHINE, "kind": "all", "minutes": args.minutes,
                      "clients": args.clients, "requests": total, "unexpected_errors": len(errors),
                      "bad_inputs_refused": sum(r[1] for k in ("bad_constant", "bad_corrupt") for r in results[k]),
                      "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
                      "rss_max_mb": round(max(r for _, r in samples), 1),
                      "rss_max_by_minute_mb": by_minute, "rss_growth_mb": round(growth, 1),
                      "rss_bound_mb": args.rss_bound_mb, "within_bound": growth <= args.rss_bound_mb,
                      "error_examples": errors[:3]}), flush=True)
    return 0 if not errors and growth <= args.rss_bound_mb else 1


if __name__ == "__main__":
    sys.exit(main())
