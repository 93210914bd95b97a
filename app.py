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
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from cyclegan.errors import CycleGANError, ModelLoadError  # noqa: E402
from cyclegan.files import HEAT_COLOURS, OutputFolder, heat_map, input_stem, load_volume, read_image_file  # noqa: E402
from cyclegan.preprocessing import to_uint8  # noqa: E402
from cyclegan.translate import CONTRASTS as DIRECTIONS, ERROR_SCALE, other_direction, output_stem  # noqa: E402

log = logging.getLogger("app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
ON_SPACE = bool(os.environ.get("SPACE_ID"))
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
VOLUME_TYPES = [".nii", ".gz"]
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


def _digest(path) -> str:
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).hexdigest()


class TranslationApp:
    """Request handlers, independent of the Gradio layout (and testable without it)."""

    def __init__(self, translator, notice: str | None = None):
        self.translator = translator
        self.notice = notice
        #: Volumes translated lately (digest of the output file -> (input slices, translations,
        #: reconstructions, output name, plane)), for the slice viewer: the web app hands the viewer
        #: a copy of the file, so the key is its content.
        self.volumes: dict = {}

    def translate_file(self, path, direction: str):
        """(input PNG, translation PNG, reconstruction PNG, error-map PNG, downloads, report) of one
        uploaded image; every file is named after the upload.

        The PNGs are lossless 8-bit (their own download buttons give them);
        ``downloads`` holds the 16-bit PNG and TIFF of the translation for
        16-bit input and is empty otherwise. ``report`` is a plain dict
        (:func:`cyclegan.translate.report`).
        """
        from cyclegan.translate import translate_image

        OUTPUTS.clean()
        gray, bits = read_image_file(path)
        result = translate_image(self.translator, gray, direction, bits)
        source, target = DIRECTIONS[direction]
        stem = input_stem(path)
        out = output_stem(stem, direction)
        forward = result.translation
        downloads = ([str(OUTPUTS.save_png(forward, f"{out}-16bit", 16)), str(OUTPUTS.save_tiff16(forward, out))]
                     if bits == 16 else [])
        return (
            str(OUTPUTS.save_png(result.shown, f"{stem}_input")),
            str(OUTPUTS.save_png(forward, out)),
            str(OUTPUTS.save_png(result.reconstruction,
                                 f"{stem}_cycle-{source.lower()}-{target.lower()}-{source.lower()}")),
            str(OUTPUTS.save_pixels(heat_map(result.error_map, ERROR_SCALE), f"{stem}_round-trip-error")),
            downloads,
            result.report,
        )

    def translate_volume(self, path, direction: str, plane: str = "axial", progress=None):
        """Translate a NIfTI volume slice by slice in ``plane`` (read from its header; resampled to
        the model's 1 mm pixels and back when its pixels are another size) and back (the cycle
        check); returns (NIfTI path with the input's shape, affine and header, report)."""
        from cyclegan.inference import check_direction
        from cyclegan.translate import translate_volume

        check_direction(direction)
        OUTPUTS.clean()
        volume = load_volume(path, plane)

        def report(stage, done, total):
            if progress is not None:
                progress(done / max(total, 1), desc=f"{stage} {done}/{total} slices")

        result = translate_volume(self.translator, volume, direction, batch_size=8, progress=report)
        out_path = volume.write(result.translation,
                                OUTPUTS.path(output_stem(input_stem(path), direction), ".nii.gz"))
        # Only what the slice viewer shows is kept (the volume itself and its own-grid translation are not).
        self.volumes[_digest(out_path)] = (result.shown, result.model_translation, result.reconstruction,
                                           output_stem(input_stem(path), direction), plane)
        while len(self.volumes) > 4:
            self.volumes.pop(next(iter(self.volumes)))
        return str(out_path), result.report

    def volume_view(self, nifti: str | None, index) -> tuple:
        """(PNG of input | translation, PNG of the round-trip error) of one slice of a volume translated
        lately, as the model saw it, named after the input (``head_t2w-from-t1w_axial_z012.png``);
        (None, None) for a volume not translated lately."""
        key = _digest(nifti) if nifti and os.path.isfile(nifti) else None
        if key not in self.volumes:
            return None, None
        shown, translation, reconstruction, stem, plane = self.volumes[key]
        i = int(np.clip(index or 0, 0, len(shown) - 1))
        view = to_uint8(np.concatenate([shown[i], translation[i]], axis=1))
        error = np.abs(shown[i] - reconstruction[i])
        return (str(OUTPUTS.save_pixels(view, f"{stem}_{plane}_z{i:03d}")),
                str(OUTPUTS.save_pixels(heat_map(error, ERROR_SCALE), f"{stem}_round-trip-error_{plane}_z{i:03d}")))

    def about(self) -> str:
        from cyclegan import __version__
        from cyclegan.card import calibration_text, dataset_info, datasets_of, quality_tables, short_name

        card = self.translator.card or {}
        metrics = card.get("metrics") or {}
        training = card.get("training") or {}
        name = "the default model shipped with the app" if self.translator.source == "default" \
            else f"`{self.translator.source}`"
        epochs = training.get("epochs_done", "?")
        refined = getattr(card.get("train_config"), "refine_steps", 0)  # a TrainConfig, or None
        lines = [ABOUT, f"\n### The model\n\n{name}; mri-cyclegan {__version__}; "
                 f"its last training run: {epochs} epoch{'' if epochs == 1 else 's'}"
                 + (f", then {refined} steps fitting its refiners" if refined else "")
                 + (f" ({training['backend']})" if training.get("backend") else "") + "."]
        datasets = datasets_of(training)
        if datasets:
            lines.append("\n### Training data\n")
            for source in datasets:
                info = dataset_info(source)
                label = info.get("hub") or short_name(source)
                lines.append(f"- `{label}`" + (f": {info['what']}; licence: {info['licence']}" if info else ""))
        if example_files("t1_to_t2") or example_files("t2_to_t1") or example_volumes():
            lines.append("\n### The examples\n")
            lines.append(f"Slices: {EXAMPLE_CAPTION} Volume: {EXAMPLE_VOLUME_CAPTION} Cut by the project's "
                         "`examples/make_examples.py`; data from http://lit.fe.uni-lj.si/tools (Lesjak Ž. et al., "
                         "\"Validation of white-matter lesion change detection methods on a novel publicly "
                         "available MRI image database\", Neuroinformatics 2016; \"A novel public MR image dataset "
                         "of multiple sclerosis patients with lesion segmentations based on multi-rater consensus\", "
                         "Neuroinformatics 2017).")
        if metrics:
            lines.append("\n### Model quality\n")
            lines.append("SSIM, PSNR and MAE inside the head on intensities in [0, 1], against the real image "
                         "of the other contrast (`benchmarks/quality.py`).\n")
            lines.append(quality_tables(metrics))
        checks = calibration_text(card.get("calibration"))
        if checks:
            lines.append("\n### Input checks\n")
            lines.append(checks)
        return "\n".join(lines)


def report_markdown(report: dict | None) -> str:
    """The plain-language reading of a :meth:`TranslationApp.check` report."""
    if not report:
        return ""
    error = report["mean_cycle_error"]
    levels = report.get("levels")
    text = VERDICTS.get(report.get("verdict"), VERDICTS[None])
    order = report.get("tissue_order")
    if order and not order["in_order"] and levels and error <= levels["typical"]:
        text = ("**Unusual**: the round trip returns the input as well as on held-out scans, but the tissue "
                "order below is wrong; check the translation against the input.")
    lines = [f"**Mean round-trip error inside the head: {error:.3f}** (intensities in [0, 1]). {text}"]
    if levels:
        lines.append(f"On held-out scans of the right contrast it was at most {levels['typical']:.3f} (95 %); "
                     f"above {levels['likely_wrong']:.3f} it is as high as on scans of the wrong contrast.")
    frame = report.get("frame")
    if frame:
        what = "these slices" if "slices" in report else "this image"
        lines.append(f"The head fills little of {what} (far more air around it than in the training "
                     f"slices), so it was translated within rows {frame['top']}-{frame['bottom']} and columns "
                     f"{frame['left']}-{frame['right']} around the head, the rest left black.")
    if order and not order["in_order"]:
        target = "T2" if report.get("direction") == "t1_to_t2" else "T1"
        should = "brighter" if target == "T2" else "darker"
        lines.insert(1, f"**The translation does not look {target}-weighted inside the brain**: CSF "
                        f"({order['csf']:.2f}) is not {should} than white matter ({order['wm']:.2f}), as it is on "
                        f"every {target}-weighted scan, so the verdict cannot be typical.")
    contrast = report.get("contrast")
    if contrast and contrast["mismatch"]:
        p = contrast["t2_probability"]
        sure = p if contrast["looks_like"] == "T2" else 1 - p
        lines.insert(0, f"**Warning: this image looks {contrast['looks_like']}-weighted, not "
                        f"{contrast['expected']}-weighted** (contrast check: {sure:.0%} "
                        f"{contrast['looks_like']}). Its translation is likely wrong; use the button below to "
                        f"translate it as {contrast['looks_like']} instead.")
    return "\n\n".join(lines)


VERDICTS = {
    "typical": "**Typical**: as low as on held-out scans the model translates well.",
    "unusual": "**Unusual**: higher than on held-out scans; check the translation against the input.",
    "likely wrong input": "**Likely a wrong input**: as high as for scans of the other contrast (or not a "
                          "brain slice); do not trust this translation.",
    None: "(This model stores no calibrated levels, so there is no verdict.)",
}


#: Captions of the examples (shown above them, where nothing covers the thumbnails).
EXAMPLE_CAPTION = ("real scans of two patients held out of training, from the open_ms data (Lesjak et al., "
                   "Neuroinformatics 2016 and 2017; CC-BY): openmslong04, a clinical scan with skull, and "
                   "openmscs07, 3-D and skull-stripped.")
EXAMPLE_VOLUME_CAPTION = ("openmslong04's T1-weighted clinical scan with skull, 28 slices 3 mm apart (open_ms, "
                          "Lesjak et al., Neuroinformatics 2016; CC-BY; the model's earliest training runs saw "
                          "16 of its axial slices).")
#: Long file names wrap instead of being cut; a phone's narrow screen stacks the panels.
CSS = """
.file-preview .filename .stem { white-space: normal; word-break: break-all; overflow: visible; }
.examples-caption p { margin: 0; font-size: var(--text-sm); }
"""


def colour_bar_html(scale: float = ERROR_SCALE) -> str:
    """The error map's colour bar and its scale, as HTML."""
    stops = ", ".join(f"rgb({int(r)},{int(g)},{int(b)})" for r, g, b in HEAT_COLOURS)
    return (f'<div class="colour-bar" style="max-width:420px"><div style="height:12px;border-radius:3px;'
            f'background:linear-gradient(to right, {stops})"></div>'
            f'<div style="display:flex;justify-content:space-between;font-size:0.85em">'
            f'<span>0</span><span>{scale / 2:.3f}</span><span>≥ {scale:.2f}</span></div>'
            f'<div style="font-size:0.85em">|input − reconstruction| per pixel: dark = the round trip '
            f'returns the input, bright = it does not.</div></div>')


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
translating it back returns the input. The error map shows |input − reconstruction|: bright spots are
where the round trip fails, a cue for where the translation is least trustworthy. Its mean inside the
head is compared with what the model gave on held-out scans (levels measured on data and stored with the
model, below), and every input's contrast is checked, so that a T2 slice in the T1 → T2 tab is flagged.
"""


# -- the Gradio layout -----------------------------------------------------------
def _gr_error(func):
    """Turn the library's errors (and any unexpected failure) into a clean gr.Error.

    An expected input error is logged as one line, with no traceback; only an
    unexpected failure logs its traceback (the server keeps serving either way).
    """
    import functools

    def refuse(message: str) -> gr.Error:
        log.info("refused input: %s", message)
        return gr.Error(message, print_exception=False)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except gr.Error:
            raise
        except CycleGANError as err:
            raise refuse(str(err)) from None
        except MemoryError:
            raise refuse("the input is too large to process") from None
        except Exception as err:  # keep serving whatever happens
            log.exception("request failed")
            raise gr.Error(f"the request failed ({type(err).__name__}); try another file",
                           print_exception=False) from None

    return wrapper


def example_files(direction: str) -> list[str]:
    prefix = "t1w" if direction == "t1_to_t2" else "t2w"
    return [str(p) for p in sorted(EXAMPLES.glob(f"{prefix}_*.png"))]


def example_volumes() -> list[str]:
    return [str(p) for p in sorted(EXAMPLES.glob("*.nii.gz"))]


def build_demo(app: TranslationApp) -> gr.Blocks:
    with gr.Blocks(title="mri-cyclegan: T1 ↔ T2 brain MRI", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# mri-cyclegan: T1-weighted ↔ T2-weighted brain MRI\n"
            "Upload an axial brain slice (PNG, JPEG or TIFF; 8- or 16-bit) or a NIfTI volume, or click an "
            "example. **Research demo, not for diagnosis.**"
        )
        if app.notice:
            gr.Markdown(f"> ⚠️ {app.notice}")
        tabs = {}
        with gr.Tabs() as tab_set:
            for direction, (source, target) in DIRECTIONS.items():
                with gr.Tab(f"{source} → {target}", id=direction):
                    tabs[direction] = _image_tab(app, direction, source, target)
            with gr.Tab("Volume (NIfTI)", id="volume"):
                _volume_tab(app)
            with gr.Tab("About", id="about"):
                gr.Markdown(app.about())
        for direction, parts in tabs.items():
            other = tabs[other_direction(direction)]
            # One click: the same file in the other tab, translated there.
            switched = parts["switch"].click(lambda path, d=other_direction(direction): (gr.Tabs(selected=d), path),
                                             inputs=parts["upload"], outputs=[tab_set, other["upload"]],
                                             api_visibility="private")
            other["follow"](switched)
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def _image_tab(app: TranslationApp, direction: str, source: str, target: str) -> dict:
    """One translation tab; returns its parts for wiring across tabs."""
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            upload = gr.File(label=f"{source}-weighted slice", file_types=IMAGE_TYPES, type="filepath")
            button = gr.Button(f"Translate to {target}", variant="primary")
            examples = example_files(direction)
            gr.Markdown(f"**Examples**: {EXAMPLE_CAPTION} Click one to translate it.", visible=bool(examples),
                        elem_classes="examples-caption")
            gallery = gr.Gallery(value=examples, columns=3, show_label=False, height=150,
                                 object_fit="contain", allow_preview=False, visible=bool(examples),
                                 interactive=False, buttons=[])
            verdict = gr.Markdown()
            switch = gr.Button(f"Translate it as {target} → {source} instead", visible=False)
        with gr.Column(scale=2):
            compare = gr.ImageSlider(label=f"Compare: input {source} | translation {target} (drag the handle)",
                                     type="filepath", interactive=False)
    with gr.Row(equal_height=True):
        shown = gr.Image(label=f"Input ({source}, as the model sees it)", format="png", type="filepath",
                         interactive=False, buttons=["download", "fullscreen"])
        translated = gr.Image(label=f"{target} translation", format="png", type="filepath",
                              interactive=False, buttons=["download", "fullscreen"])
        recon = gr.Image(label=f"Cycle ({source} → {target} → {source})", format="png",
                         type="filepath", interactive=False, buttons=["download", "fullscreen"])
        with gr.Column(min_width=160):
            heat = gr.Image(label="Round-trip error", format="png", type="filepath", interactive=False,
                            buttons=["download", "fullscreen"])
            gr.HTML(colour_bar_html())
    files = gr.File(label="16-bit downloads of the translation (PNG and TIFF)", file_count="multiple",
                    interactive=False, visible=False)
    report = gr.JSON(label="report", visible=False)

    run = _gr_error(lambda path, d=direction: app.translate_file(path, d))

    def show(input_png, translation_png, result, downloads):
        mismatch = bool(result and (result.get("contrast") or {}).get("mismatch"))
        return ((input_png, translation_png) if input_png and translation_png else None,
                report_markdown(result), gr.update(visible=mismatch), gr.update(visible=bool(downloads)))

    outputs = [shown, translated, recon, heat, files, report]
    show_inputs, show_outputs = [shown, translated, report, files], [compare, verdict, switch, files]

    def clear():
        """Every output of the tab emptied, so that nothing of an earlier input stays beside an error."""
        return [None] * len(outputs) + [None, "", gr.update(visible=False), gr.update(visible=False)]

    def after(translation):
        """The results of a translation event shown when it succeeds, every output cleared when it fails."""
        translation.success(show, inputs=show_inputs, outputs=show_outputs, api_visibility="private")
        translation.failure(clear, outputs=outputs + show_outputs, api_visibility="private")

    def follow(event):
        """Translate the upload after ``event`` (an example picked, a file switched from the other tab)."""
        after(event.then(run, inputs=upload, outputs=outputs, api_visibility="private"))

    after(button.click(run, inputs=upload, outputs=outputs, api_name=direction))

    def pick(evt: gr.SelectData):
        return examples[evt.index]

    follow(gallery.select(pick, outputs=upload, api_visibility="private"))
    return {"upload": upload, "follow": follow, "switch": switch}


def _volume_tab(app: TranslationApp) -> None:
    with gr.Row():
        with gr.Column():
            volume = gr.File(label="NIfTI volume (.nii / .nii.gz)", file_types=VOLUME_TYPES, type="filepath")
            # Dropdowns that let any value through: the app itself refuses a bad one, in one log line.
            direction = gr.Dropdown([("T1 → T2", "t1_to_t2"), ("T2 → T1", "t2_to_t1")], value="t1_to_t2",
                                    label="Direction", allow_custom_value=True)
            plane = gr.Dropdown([("axial", "axial"), ("coronal", "coronal"), ("sagittal", "sagittal")],
                                value="axial", label="Plane (read from the NIfTI header)", allow_custom_value=True)
            button = gr.Button("Translate volume", variant="primary")
            examples = example_volumes()
            if examples:
                gr.Markdown(f"**Example volume**: {EXAMPLE_VOLUME_CAPTION} Click it to translate it.",
                            elem_classes="examples-caption")
                example_set = gr.Examples([[v, "t1_to_t2", "axial"] for v in examples],
                                          inputs=[volume, direction, plane], label=None)
            nifti = gr.File(label="Translated volume (NIfTI: the input's shape, affine and header)",
                            interactive=False)
            verdict = gr.Markdown()
            switch = gr.Button("Translate it in the other direction instead", visible=False)
        with gr.Column():
            index = gr.Slider(0, 1, value=0, step=1, label="Slice", visible=False)
            view = gr.Image(label="input | translation", format="png", type="filepath", interactive=False,
                            buttons=["download", "fullscreen"])
            heat = gr.Image(label="Round-trip error of this slice", format="png", type="filepath",
                            interactive=False, buttons=["download", "fullscreen"])
            gr.HTML(colour_bar_html())
    report = gr.JSON(label="report", visible=False)

    def show(path, result):
        count = int((result or {}).get("slices") or 0)
        middle = count // 2
        mismatch = bool(result and (result.get("contrast") or {}).get("mismatch"))
        return (gr.update(maximum=max(count - 1, 1), value=middle, visible=count > 1),
                *app.volume_view(path, middle), report_markdown(result), gr.update(visible=mismatch))

    def clear():
        return None, None, gr.update(visible=False, value=0), None, None, "", gr.update(visible=False)

    def translate_volume(path, direction, plane, progress=gr.Progress()):
        return app.translate_volume(path, direction, plane, progress)

    run = _gr_error(translate_volume)
    shown_outputs = [index, view, heat, verdict, switch]

    def follow(event):
        event.success(show, inputs=[nifti, report], outputs=shown_outputs, api_visibility="private")
        event.failure(clear, outputs=[nifti, report, *shown_outputs], api_visibility="private")

    follow(button.click(run, inputs=[volume, direction, plane], outputs=[nifti, report], api_name="volume"))
    if examples:
        follow(example_set.load_input_event.then(run, inputs=[volume, direction, plane], outputs=[nifti, report],
                                                 api_visibility="private"))
    follow(switch.click(_gr_error(other_direction), inputs=direction, outputs=direction, api_visibility="private").then(
        run, inputs=[volume, direction, plane], outputs=[nifti, report], api_visibility="private"))
    index.change(app.volume_view, inputs=[nifti, index], outputs=[view, heat], api_visibility="private")


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
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, footer_links=["api"], css=CSS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
