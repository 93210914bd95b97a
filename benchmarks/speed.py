"""Speed benchmark, side by side with the PyTorch reference peer in the same run.

    python benchmarks/speed.py [--only infer,volume,cli,app,train] [--quick]

``--quick`` (what CI runs, so that the benchmark cannot rot) times every part briefly: the default
model only, fp32, a few repeats, a 16-slice volume, the tiny preset's training, no peer.

Prints one JSON line per result; every line names the machine. Measures:

- ``infer``: median latency of one 256x256 slice (batch 1) for the default model, each ``--model
  FOLDER`` (with its ``ratio_to_default``) and the reference ResNet-9 architecture, fp32 (XLA) and
  bf16 (TensorFlow graph on oneDNN), with the bf16 output's
  deviation from fp32 on the [0, 1] scale,
  and the peer at the same architectures;
- ``volume``: a 181-slice volume on the 181x217 grid, batched;
- ``cli``: ``mri-cyclegan translate`` on a folder of such volumes: volumes per minute (each translated,
  checked by the round trip and written) and the whole command's time;
- ``app``: the app's round trip through gradio_client against the model time;
- ``train``: training images/s at 256x256, one channel, reference configuration, against the peer,
  and the train command's defaults (its preset, crop size and batch);
- memory (with ``app`` and ``train``): peak RSS of the app serving one request and of each CPU
  training configuration.

The peer (``../shared/peers/torch_cyclegan.py``) runs when it and torch are present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEER = ROOT.parent / "shared" / "peers" / "torch_cyclegan.py"

import numpy as np  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


MACHINE = machine()


def emit(**row):
    print(json.dumps({"machine": MACHINE, **row}, sort_keys=True), flush=True)


#: Set by --quick: every timing with a few repeats, small inputs, no peer.
QUICK = False


def median_time(fn, repeats=15, warmup=3):
    if QUICK:
        repeats, warmup = min(repeats, 2), 1
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peer(*args):
    """Run the peer; returns its JSON lines (empty when it or torch is missing, or --quick)."""
    if QUICK or not PEER.is_file():
        return []
    proc = subprocess.run([sys.executable, str(PEER), *args], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        emit(bench="peer", error=(proc.stderr.strip().splitlines() or ["failed"])[-1])
        return []
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def generator_variants(config, weights=None):
    """fp32 and bf16 copies of one generator (the same weights)."""
    import keras

    from cyclegan.models import build_generator

    fp32 = build_generator(config, "t1_to_t2")
    if weights is not None:
        fp32.set_weights(weights)
    bf16 = build_generator(config, "t1_to_t2", dtype="mixed_bfloat16")
    bf16.set_weights(fp32.get_weights())
    return {"fp32": fp32, "bf16": bf16}, keras


def bench_infer(args):
    from cyclegan.config import preset
    from cyclegan.hub import load_generators
    from cyclegan.inference import compile_generator

    x = np.random.default_rng(0).uniform(-1, 1, (1, 256, 256, 1)).astype(np.float32)
    models = {}
    try:
        default = load_generators(warmup=False)
        models["default"] = (default.config, default.generators["t1_to_t2"].get_weights())
    except ValueError as err:
        emit(bench="infer", model="default", skipped=str(err))
    for folder in args.model or []:
        candidate = load_generators(folder, warmup=False)
        models[folder] = (candidate.config, candidate.generators["t1_to_t2"].get_weights())
    if not QUICK:
        models["reference"] = (preset("reference"), None)
    default_s = {}  # the default model's time per precision, for the others' ratio to it
    for name, (config, weights) in models.items():
        variants, _ = generator_variants(config, weights)
        if QUICK:
            variants = {"fp32": variants["fp32"]}
        reference_out = None
        for precision, model in variants.items():
            fn = compile_generator(model, "bfloat16" if precision == "bf16" else "float32")
            seconds = median_time(lambda: fn(x))
            out = fn(x)
            row = dict(bench="infer", model=name, precision=precision, size=256, batch=1,
                       generator_filters=config.generator_filters, generator_blocks=config.generator_blocks,
                       upsampling=config.upsampling, median_s=round(seconds, 4))
            if name == "default":
                default_s[precision] = seconds
            elif precision in default_s:
                row["ratio_to_default"] = round(seconds / default_s[precision], 3)
            if reference_out is None:
                reference_out = out
            else:
                diff = np.abs(out - reference_out) / 2.0  # on the [0, 1] output scale
                row["max_abs_diff_vs_fp32"] = round(float(diff.max()), 4)
                row["mean_abs_diff_vs_fp32"] = round(float(diff.mean()), 5)
            emit(**row)
        for result in peer("--mode", "infer", "--size", "256", "--ngf", str(config.generator_filters),
                           "--blocks", str(config.generator_blocks)):
            emit(bench="infer", model=name, impl="torch_peer", median_s=round(result["median_s"], 4),
                 threads=result["threads"])


def bench_volume(args):
    from cyclegan.hub import load_generators
    from cyclegan.phantom import phantom_pairs

    rng = np.random.default_rng(0)
    base = [t1 for _, t1, _ in phantom_pairs(np.linspace(40, 140, 10).round().astype(int).tolist())]
    count = 16 if QUICK else 181
    slices = [base[i % len(base)] * (1 + 0.01 * rng.standard_normal()) for i in range(count)]
    for precision in ("float32",) if QUICK else ("float32", "bfloat16"):
        translator = load_generators(precision=precision)
        for batch in (8,) if QUICK else (1, 8):
            translator.translate_slices(slices[: batch * 2], "t1_to_t2", batch_size=batch)  # compile
            start = time.perf_counter()
            translator.translate_slices(slices, "t1_to_t2", batch_size=batch)
            emit(bench="volume", slices=count, grid="181x217", batch=batch, precision=precision,
                 seconds=round(time.perf_counter() - start, 2))


def bench_cli(args):
    """``mri-cyclegan translate`` on a folder of 181-slice volumes (181x217 at 1 mm), as from the shell:
    each volume translated and back (the cycle check) and written; volumes per minute from the
    seconds each input took (report.csv), and the whole command's time with the model's loading."""
    import csv
    import shutil
    import tempfile

    import nibabel as nib

    from cyclegan.phantom import phantom_pairs

    count, volumes = (16, 1) if QUICK else (181, 3)
    base = [t1 for _, t1, _ in phantom_pairs(np.linspace(40, 140, 10).round().astype(int).tolist())]
    data = np.stack([base[i % len(base)].T for i in range(count)], axis=-1).astype(np.float32)
    folder = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    try:
        (folder / "in").mkdir()
        for i in range(volumes):
            nib.save(nib.Nifti1Image(data, np.eye(4)), folder / "in" / f"head{i}.nii.gz")
        for precision in ("float32",) if QUICK else ("float32", "auto"):
            out = folder / f"out-{precision}"
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(folder / "in"), "--output",
                                   str(out), "--direction", "t1_to_t2", "--precision", precision],
                                  cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                emit(bench="cli", error=done.stderr[-500:])
                continue
            with open(out / "report.csv", newline="") as handle:
                seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
            emit(bench="cli", volumes=volumes, slices=count, grid="181x217", precision=precision,
                 seconds_per_volume=round(float(np.median(seconds)), 2),
                 volumes_per_minute=round(60.0 / float(np.median(seconds)), 2), command_seconds=round(wall, 1))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rss_mb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return None


FLOOR_APP = r"""
import sys
import gradio as gr
outputs = int(sys.argv[2])
def echo(path):  # no work: what remains is Gradio's own transport
    return tuple([path] * outputs) if outputs > 1 else path
with gr.Blocks() as demo:
    upload = gr.File(type="filepath")
    images = [gr.Image(type="filepath", format="png") for _ in range(outputs)]
    gr.Button().click(echo, upload, images, api_name="echo")
demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
"""


def gradio_floor(path: str, outputs: int) -> float:
    """Median gradio_client round trip of a no-op app with the same input and ``outputs`` images."""
    from gradio_client import Client, handle_file

    from benchmarks._harness import free_port, wait_for

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-c", FLOOR_APP, str(port), str(outputs)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        if not wait_for(proc, url):
            raise RuntimeError("the no-op Gradio app did not start")
        client = Client(url, verbose=False)
        return median_time(lambda: client.predict(handle_file(path), api_name="/echo"), repeats=10)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_app(args):
    from gradio_client import Client, handle_file
    from PIL import Image

    from cyclegan.hub import load_generators

    path = str(ROOT / "examples" / "t1w_openmslong04_z028.png")
    image = np.asarray(Image.open(path))
    translator = load_generators(precision="auto")  # what the app uses
    model_s = median_time(lambda: translator.translate_with_cycle(image, "t1_to_t2"), repeats=10)
    import app

    logic = app.TranslationApp(translator)
    handler_s = median_time(lambda: logic.translate_file(path, "t1_to_t2"), repeats=10)
    # An 8-bit request returns three images (translation, reconstruction, heat map) and no downloads.
    floor_s = gradio_floor(path, outputs=3)
    from benchmarks._harness import spawn

    proc, url = spawn()
    if url is None:
        raise RuntimeError("the app exited at start")
    try:
        start_rss = rss_mb(proc.pid)
        client = Client(url, verbose=False)
        app_s = median_time(lambda: client.predict(handle_file(path), api_name="/t1_to_t2"), repeats=10)
        emit(bench="app", image=f"{image.shape[1]}x{image.shape[0]}", precision=translator.precision,
             model_s=round(model_s, 4), handler_s=round(handler_s, 4),
             handler_overhead_fraction=round(handler_s / model_s - 1, 3),
             app_round_trip_s=round(app_s, 4), overhead_fraction=round(app_s / model_s - 1, 3),
             gradio_floor_s=round(floor_s, 4),
             overhead_beyond_floor_fraction=round((app_s - floor_s) / model_s - 1, 3),
             note="model_s is translation + cycle reconstruction, what one request computes; "
                  "gradio_floor_s is the same round trip to a no-op Gradio app with the same "
                  "input and three image outputs")
        emit(bench="memory", what="app serving one request", rss_start_mb=round(start_rss, 1),
             peak_rss_mb=round(rss_mb(proc.pid, "VmHWM"), 1))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


TRAIN_SCRIPT = r"""
import json, sys, time, resource
import numpy as np
from cyclegan.config import TrainConfig, preset
from cyclegan.training import CycleGAN
size, steps, batch, mp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
gan = CycleGAN(preset(sys.argv[5]).replace(image_size=size), TrainConfig(batch_size=batch, mixed_precision=mp))
gan.compile()
rng = np.random.default_rng(0)
data = {k: np.tanh(rng.standard_normal((batch * (steps + 2), size, size, 1))).astype("float32") for k in ("t1", "t2")}
warm = {k: v[: 2 * batch] for k, v in data.items()}
gan.fit(warm, batch_size=batch, epochs=1, verbose=0)
timed = {k: v[2 * batch :] for k, v in data.items()}
start = time.perf_counter()
gan.fit(timed, batch_size=batch, epochs=1, verbose=0)
dt = time.perf_counter() - start
print(json.dumps({"images_per_s": batch * steps / dt, "s_per_step": dt / steps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_train(args):
    import keras

    from cyclegan.config import RunOptions, TrainConfig, preset

    # (preset, crop, batch, steps, note): the reference configuration beside the peer, then the train
    # command's defaults (its preset, crop and batch, every default loss term), whose time a step
    # gives the plain command's run time (docs/training.md)
    default_preset = RunOptions().preset
    named = {"reference": ("reference", 256, 1, args.train_steps, None),
             "defaults": (default_preset, preset(default_preset).image_size, TrainConfig().batch_size, args.train_steps,
                          "the train command's defaults")}
    configs = args.train_configs.split(",")
    runs = [("tiny", 32, 1, 2, None)] if QUICK else [named[name] for name in configs]
    for config, size, batch, steps, note in runs:
        for mp in (False,) if QUICK else [p == "bf16" for p in args.train_precisions.split(",")]:
            proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, str(size), str(steps), str(batch), str(int(mp)),
                                   config], capture_output=True, text=True, cwd=ROOT, timeout=3600,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode != 0:
                emit(bench="train", error=proc.stderr.strip().splitlines()[-1])
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            emit(bench="train", impl="mri-cyclegan", backend=keras.backend.backend(), config=config, size=size,
                 batch=batch, precision="bf16" if mp else "fp32", steps=steps,
                 images_per_s=round(result["images_per_s"], 3), s_per_step=round(result["s_per_step"], 3),
                 **({"note": note} if note else {}))
            if not mp:
                emit(bench="memory", what=f"CPU training, {config}, batch {batch}, {size}x{size}",
                     peak_rss_mb=round(result["peak_rss_mb"], 1))
    for result in peer("--mode", "train", "--configs", "ref1ch,opt_b1", "--steps", str(args.train_steps)) \
            if "reference" in configs else []:
        emit(bench="train", impl="torch_peer", config=result["name"], size=256, batch=result["batch"],
             precision="bf16" if result["amp_bf16"] else "fp32", steps=result["steps"],
             images_per_s=round(result["images_per_s"], 3), s_per_step=round(result["s_per_step"], 3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="infer,volume,cli,app,train", help="comma-separated benchmarks")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps (CPU steps take seconds)")
    parser.add_argument("--train-configs", default="reference,defaults",
                        choices=["reference,defaults", "reference", "defaults"],
                        help="train: the reference configuration (beside the peer), the train command's defaults, or both")
    parser.add_argument("--train-precisions", default="fp32,bf16", choices=["fp32,bf16", "fp32", "bf16"],
                        help="train: precisions to time (bf16 is slow on CPUs without bf16 units)")
    parser.add_argument("--quick", action="store_true", help="brief run of every part (CI)")
    parser.add_argument("--model", action="append", metavar="FOLDER",
                        help="infer: also time this model folder's generator beside the default's, as a ratio "
                             "of it (repeatable)")
    args = parser.parse_args(argv)
    global QUICK
    QUICK = args.quick
    benches = {"infer": bench_infer, "volume": bench_volume, "cli": bench_cli, "app": bench_app,
               "train": bench_train}
    for name in args.only.split(","):
        benches[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
