"""mri-cyclegan Gradio app: T1 -> T2 and T2 -> T1 translation of brain-MRI slices and volumes.

    python app.py                          # the default model shipped with the package
    python app.py --model USER/REPO        # a Hub repo (or CYCLEGAN_MODEL=...)
    python app.py --model runs/my-model    # a local model folder

The same file is the entry point of the Hugging Face Space.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from cyclegan.errors import CycleGANError, ModelLoadError  # noqa: E402
from cyclegan.files import OutputFolder, heat_map, read_image_file, read_volume, write_volume_like  # noqa: E402
from cyclegan.preprocessing import to_uint8  # noqa: E402

log = logging.getLogger("app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
ON_SPACE = bool(os.environ.get("SPACE_ID"))
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
VOLUME_TYPES = [".nii", ".gz"]
DIRECTIONS = {"t1_to_t2": ("T1", "T2"), "t2_to_t1": ("T2", "T1")}
#: Generated files: unique names, deleted after an hour (the app runs for weeks on a Space).
OUTPUTS = OutputFolder(Path(tempfile.gettempdir()) / "mri-cyclegan-app", max_age_s=3600, clean_interval_s=60)


# -- the app's logic -------------------------------------------------------------
def load_model(source: str | None, precision: str = "auto"):
    """(translator, notice). A model that fails to load falls back to the default."""
    from cyclegan.hub import load_generators

    if source:
        try:
            return load_generators(source, precision=precision), None
        except ModelLoadError as err:
            notice = f"Could not load the model '{source}': {err}. Showing the default model instead."
            log.warning(notice)
            return load_generators(None, precision=precision), notice
    return load_generators(None, precision=precision), None


class TranslationApp:
    """Request handlers, independent of the Gradio layout (and testable without it)."""

    def __init__(self, translator, notice: str | None = None):
        self.translator = translator
        self.notice = notice

    def translate_file(self, path, direction: str):
        """(translation PNG, reconstruction PNG, heat-map PNG, downloads) for one uploaded image.

        The translation PNG is lossless 8-bit (the image's own download button
        gives it); ``downloads`` holds the 16-bit PNG and TIFF for 16-bit
        input and is empty otherwise, so that no client fetches the same
        8-bit image twice.
        """
        OUTPUTS.clean()
        gray, bits = read_image_file(path)
        forward, back, scaled = self.translator.cycle_check(gray, direction)
        error = np.abs(scaled - back)
        source, target = DIRECTIONS[direction]
        stem = f"{source.lower()}_to_{target.lower()}"
        downloads = ([str(OUTPUTS.save_png(forward, stem, 16)), str(OUTPUTS.save_tiff16(forward, stem))]
                     if bits == 16 else [])
        return (
            str(OUTPUTS.save_png(forward, f"{stem}-translation")),
            str(OUTPUTS.save_png(back, f"{stem}-cycle")),
            str(OUTPUTS.save_pixels(heat_map(error), f"{stem}-error")),
            downloads,
        )

    def translate_volume(self, path, direction: str, axis: int, progress=None):
        """Translate a NIfTI volume slice by slice; returns (NIfTI path, input, output)."""
        OUTPUTS.clean()
        image, data, slices = read_volume(path, axis)

        def report(done, total):
            if progress is not None:
                progress(done / max(total, 1), desc=f"translating slices {done}/{total}")

        out = self.translator.translate_slices(slices, direction, batch_size=8, progress=report)
        source, target = DIRECTIONS[direction]
        out_path = write_volume_like(image, out, axis,
                                     OUTPUTS.path(f"volume_{source.lower()}_to_{target.lower()}", ".nii.gz"))
        lo, hi = np.percentile(data, [0.5, 99.5]) if data.size else (0, 1)
        shown = np.clip((np.stack(slices) - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)
        return str(out_path), shown, out

    def about(self) -> str:
        from cyclegan.card import dataset_info, datasets_of, quality_tables, short_name

        card = self.translator.card or {}
        metrics = card.get("metrics") or {}
        lines = [ABOUT]
        datasets = datasets_of(card.get("training"))
        if datasets:
            lines.append("\n### Training data\n")
            for source in datasets:
                info = dataset_info(source)
                name = info.get("hub") or short_name(source)
                lines.append(f"- `{name}`" + (f": {info['what']}; licence: {info['licence']}" if info else ""))
        if metrics:
            lines.append("\n### Model quality\n")
            lines.append("SSIM, PSNR and MAE inside the head on intensities in [0, 1], against the real image "
                         "of the other contrast (`benchmarks/quality.py`).\n")
            lines.append(quality_tables(metrics))
        lines.append(f"\nModel: `{self.translator.source}`.")
        return "\n".join(lines)


ABOUT = """
## About

**Research demo, not for diagnosis.** The translations are plausible images made by a neural network,
not measurements; never use them for clinical decisions.

MRI contrast depends on how fast each tissue's magnetisation recovers (T1) and decays (T2):

| tissue | T1-weighted | T2-weighted |
| --- | --- | --- |
| water / CSF | dark | very bright |
| fat | bright | darker |
| white matter | brighter than grey matter | darker than grey matter |
| grey matter | darker than white matter | brighter than white matter |
| bone (cortical) | dark | dark |

The model is a CycleGAN: two generators (T1 → T2 and T2 → T1) trained so that translating an image and
translating it back returns the input. The heat map shows |input − reconstruction|: bright spots are
where the round trip fails, a cue for where the translation is least trustworthy.
"""


# -- the Gradio layout -----------------------------------------------------------
def _gr_error(func):
    """Turn the library's errors (and any unexpected failure) into a clean gr.Error."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except gr.Error:
            raise
        except CycleGANError as err:
            raise gr.Error(str(err)) from None
        except MemoryError:
            raise gr.Error("the input is too large to process") from None
        except Exception as err:  # keep serving whatever happens
            log.exception("request failed")
            raise gr.Error(f"the request failed ({type(err).__name__}); try another file") from None

    return wrapper


def example_files(direction: str) -> list:
    prefix = "t1w" if direction == "t1_to_t2" else "t2w"
    return [[str(p)] for p in sorted(EXAMPLES.glob(f"{prefix}_*.png"))]


def build_demo(app: TranslationApp) -> gr.Blocks:
    with gr.Blocks(title="mri-cyclegan: T1 ↔ T2 brain MRI", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# mri-cyclegan: T1-weighted ↔ T2-weighted brain MRI\n"
            "Upload an axial brain slice (PNG, JPEG or TIFF; 8- or 16-bit) or a NIfTI volume. "
            "**Research demo, not for diagnosis.**"
        )
        if app.notice:
            gr.Markdown(f"> ⚠️ {app.notice}")
        for direction, (source, target) in DIRECTIONS.items():
            with gr.Tab(f"{source} → {target}"):
                with gr.Row():
                    with gr.Column():
                        upload = gr.File(label=f"{source}-weighted slice", file_types=IMAGE_TYPES, type="filepath")
                        button = gr.Button(f"Translate to {target}", variant="primary")
                    with gr.Column():
                        translated = gr.Image(label=f"{target}-weighted (translation)", format="png",
                                              type="filepath", interactive=False)
                with gr.Row():
                    recon = gr.Image(label=f"Cycle reconstruction ({source} → {target} → {source})",
                                     format="png", type="filepath", interactive=False)
                    heat = gr.Image(label="|input − reconstruction| (bright = less reliable)",
                                    format="png", type="filepath", interactive=False)
                    files = gr.File(label="16-bit downloads (PNG and TIFF, for 16-bit input)",
                                    file_count="multiple", interactive=False)
                handler = _gr_error(lambda path, d=direction: app.translate_file(path, d))
                outputs = [translated, recon, heat, files]
                button.click(handler, inputs=upload, outputs=outputs, api_name=direction)
                examples = example_files(direction)
                if examples:
                    gr.Examples(examples, inputs=upload, outputs=outputs, fn=handler,
                                run_on_click=True, cache_examples=False, label="Examples (simulated phantom slices)")
        with gr.Tab("Volume (NIfTI)"):
            with gr.Row():
                with gr.Column():
                    volume = gr.File(label="NIfTI volume (.nii / .nii.gz)", file_types=VOLUME_TYPES, type="filepath")
                    vol_direction = gr.Radio([("T1 → T2", "t1_to_t2"), ("T2 → T1", "t2_to_t1")],
                                             value="t1_to_t2", label="Direction")
                    vol_axis = gr.Radio([("axial (2)", 2), ("coronal (1)", 1), ("sagittal (0)", 0)],
                                        value=2, label="Slice axis")
                    vol_button = gr.Button("Translate volume", variant="primary")
                with gr.Column():
                    vol_file = gr.File(label="Translated volume (NIfTI, input's affine and header)", interactive=False)
                    vol_slider = gr.Slider(0, 1, value=0, step=1, label="Slice")
                    vol_view = gr.Image(label="input | translation", format="png", type="filepath",
                                        interactive=False)
            vol_state = gr.State(None)

            def render(state, index):
                if state is None:
                    return None
                shown, out = state
                i = int(np.clip(index, 0, len(out) - 1))
                view = to_uint8(np.concatenate([shown[i], out[i]], axis=1))
                return str(OUTPUTS.save_pixels(view, f"slice{i:03d}"))

            def run_volume(path, direction, axis, progress=gr.Progress()):
                nifti, shown, out = app.translate_volume(path, direction, axis, progress)
                middle = len(out) // 2
                state = (shown, out)
                return (nifti, gr.update(maximum=len(out) - 1, value=middle), render(state, middle), state)

            vol_button.click(_gr_error(run_volume), inputs=[volume, vol_direction, vol_axis],
                             outputs=[vol_file, vol_slider, vol_view, vol_state], api_name="volume")
            vol_slider.change(render, inputs=[vol_state, vol_slider], outputs=vol_view,
                              api_visibility="private")
        with gr.Tab("About"):
            gr.Markdown(app.about())
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(proc, url: str, timeout: float = 180) -> bool:
    """Wait until ``url`` answers (True) or ``proc`` exits or the time is up (False)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def spawn(*args: str, timeout: float = 180, output=None):
    """Start this app in a child process on a free loopback port (tests, benchmarks).

    Returns (process, url), url None when the app exited at start; ``output``
    is a file for what it prints (default: discarded).
    """
    import subprocess

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=ROOT,
                            env=env, stdout=output if output is not None else subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    if wait_for(proc, url, timeout):
        return proc, url
    if proc.poll() is not None:
        return proc, None
    proc.kill()
    raise RuntimeError("the app did not start in time")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="mri-cyclegan Gradio app",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=os.environ.get("CYCLEGAN_MODEL") or None,
                   help="Hub repo id or local model folder (env CYCLEGAN_MODEL); default: the shipped model")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   default=os.environ.get("CYCLEGAN_PRECISION", "auto"),
                   help="inference precision (env CYCLEGAN_PRECISION); auto = bfloat16 on CPUs with bf16 units")
    p.add_argument("--host", default="0.0.0.0" if ON_SPACE else "127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="port")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        translator, notice = load_model(args.model, args.precision)
    except ModelLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    demo = build_demo(TranslationApp(translator, notice))
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, footer_links=["api"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
