"""The ``mri-cyclegan`` command (also ``python -m cyclegan``): translate many scans from the shell.

    mri-cyclegan translate scan.nii.gz slices/ bids-dataset/ --output translated/
    mri-cyclegan translate t1/ --output t2/ --direction t1_to_t2 --plane coronal --model USER/REPO

Inputs are files (NIfTI, PNG, JPEG, TIFF; 8- or 16-bit), folders (searched recursively) or BIDS data
sets (a folder with ``dataset_description.json`` or ``sub-*`` folders: its ``*_T1w`` / ``*_T2w``
NIfTI volumes). Each output keeps its input's name, format, size and bit depth, and a volume its
shape, affine and header (``scan_t2w-from-t1w.nii.gz``, as the app names it); a BIDS data set's
go to ``OUTPUT/derivatives/mri-cyclegan/`` as a BIDS derivatives data set. Every input gets the
app's checks (round-trip error, verdict, contrast check), written to ``OUTPUT/report.csv``.

A bad input never stops the run: it is named with the reason and the others are translated. The
exit status is 0 when every input was translated (or its output already existed), 1 when any input
failed, 2 for a usage error. Outputs are written atomically and existing ones skipped unless
``--overwrite``, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cyclegan.config import HelpFormatter, TranslateConfig, add_arguments

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
VOLUME_SUFFIXES = (".nii.gz", ".nii")
#: Where a BIDS data set's translations go, under the output folder.
DERIVATIVES = Path("derivatives") / "mri-cyclegan"
#: The ``desc`` entity of a translated BIDS file.
BIDS_DESC = "mricyclegan"
#: BIDS suffix of each contrast.
BIDS_SUFFIX = {"T1": "T1w", "T2": "T2w"}
REPORT = "report.csv"
REPORT_FIELDS = ("input", "output", "status", "direction", "contrast_check", "mean_cycle_error", "verdict",
                 "seconds", "message")
#: Exit statuses.
OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot run (exit status 2)."""


def suffix_of(path: Path) -> str:
    """The file type of ``path`` by its name (``.nii.gz``, ``.png``, ...), lower case, or ''."""
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES + IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def is_volume(path: Path) -> bool:
    return suffix_of(path) in VOLUME_SUFFIXES


def is_bids(folder: Path) -> bool:
    """A BIDS data set: ``dataset_description.json`` or ``sub-*`` folders at its top."""
    return (folder / "dataset_description.json").is_file() or any(
        p.is_dir() and p.name.startswith("sub-") for p in folder.iterdir())


@dataclass
class Job:
    """One input and where its translation goes."""

    source: Path
    #: The output folder and the file name's stem (before ``_t2w-from-t1w``), for plain inputs.
    folder: Path
    stem: str = ""
    #: For a BIDS input: its path inside the data set (``sub-01/anat/sub-01_T1w.nii.gz``) and contrast.
    bids_path: Path | None = None
    bids_contrast: str | None = None
    error: str | None = None  # a reason to fail before reading it
    row: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.source)

    @property
    def natural_direction(self) -> str:
        """The direction that reads this input's contrast as its name gives it (T1 for plain files)."""
        return "t2_to_t1" if self.bids_contrast == "T2w" else "t1_to_t2"

    def output(self, direction: str) -> Path:
        """The translation's path for ``direction``."""
        from cyclegan.translate import CONTRASTS, output_stem

        suffix = suffix_of(self.source)
        if self.bids_path is not None:
            target = BIDS_SUFFIX[CONTRASTS[direction][1]]
            return self.folder / bids_output_name(self.source.name, target)
        return self.folder / f"{output_stem(self.stem, direction)}{suffix}"


def bids_output_name(name: str, target_suffix: str) -> str:
    """``sub-01_ses-1_acq-x_T1w.nii.gz`` -> ``sub-01_ses-1_acq-x_desc-mricyclegan_T2w.nii.gz``."""
    extension = suffix_of(Path(name))
    entities = name[: -len(extension)].split("_")[:-1]  # the last part is the suffix (T1w)
    entities = [e for e in entities if not e.startswith("desc-")] + [f"desc-{BIDS_DESC}", target_suffix]
    return "_".join(entities) + extension


def bids_inputs(root: Path, output: Path, direction: str) -> list[Job]:
    """The T1w / T2w NIfTI volumes of a BIDS data set (``sub-*/[ses-*/]anat/``); with a fixed
    ``direction``, only those of its source contrast."""
    from cyclegan.translate import CONTRASTS

    wanted = ("T1w", "T2w") if direction == "auto" else (BIDS_SUFFIX[CONTRASTS[direction][0]],)
    jobs = []
    for path in sorted(root.glob("sub-*/anat/*")) + sorted(root.glob("sub-*/ses-*/anat/*")):
        extension = suffix_of(path)
        if extension not in VOLUME_SUFFIXES or path.name.startswith("."):
            continue
        contrast = path.name[: -len(extension)].rsplit("_", 1)[-1]
        if contrast not in wanted:
            continue
        relative = path.relative_to(root)
        jobs.append(Job(path, output / DERIVATIVES / relative.parent, bids_path=relative, bids_contrast=contrast))
    return jobs


def find_inputs(inputs: list[str], output: Path, direction: str) -> tuple[list[Job], list[Path]]:
    """(jobs, BIDS roots) for the command line's inputs; an input that cannot be read becomes a job
    that fails with the reason. The output folder is never searched."""
    from cyclegan.files import input_stem

    jobs, roots = [], []
    out = output.resolve()
    for given in inputs:
        path = Path(given)
        if not path.exists():
            jobs.append(Job(path, output, error="no such file or folder"))
        elif path.is_dir():
            if is_bids(path):
                roots.append(path)
                found = bids_inputs(path, output, direction)
                if not found:
                    jobs.append(Job(path, output, error="a BIDS data set with no T1w or T2w NIfTI volumes "
                                                        "in sub-*/[ses-*/]anat/"))
                jobs.extend(found)
                continue
            found = []
            for item in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in item.relative_to(path).parts)
                if hidden or not item.is_file() or not suffix_of(item) or out in item.resolve().parents:
                    continue
                relative = item.relative_to(path).parent
                found.append(Job(item, output / relative, stem=input_stem(item)))
            if not found:
                jobs.append(Job(path, output, error="no NIfTI, PNG, JPEG or TIFF files in this folder"))
            jobs.extend(found)
        elif not suffix_of(path):
            jobs.append(Job(path, output, error="not a NIfTI (.nii, .nii.gz), PNG, JPEG or TIFF file"))
        else:
            jobs.append(Job(path, output, stem=input_stem(path)))
    return jobs, roots


# -- writing -------------------------------------------------------------------------------
def _partial(path: Path) -> Path:
    """A hidden file beside ``path`` with the same type, to be renamed onto it when complete."""
    return path.with_name(f".{path.name[: -len(suffix_of(path)) or None]}.partial-{os.getpid()}{suffix_of(path)}")


def write_atomically(path: Path, write) -> Path:
    """``write(temporary path)``, then the file renamed onto ``path``: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(path)
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def save_image(image01, path: Path, bits: int) -> None:
    """A [0, 1] image as ``path``'s format: PNG or TIFF of ``bits`` bits, or JPEG (8-bit, quality 95)."""
    from PIL import Image

    from cyclegan.files import to_uint16
    from cyclegan.preprocessing import to_uint8

    suffix = suffix_of(path)
    pixels = to_uint16(image01) if bits == 16 and suffix != ".jpg" and suffix != ".jpeg" else to_uint8(image01)
    if suffix in (".jpg", ".jpeg"):
        Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    elif suffix in (".tif", ".tiff"):
        Image.fromarray(pixels).save(path, format="TIFF")
    else:
        Image.fromarray(pixels).save(path, format="PNG")


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def describe_derivatives(output: Path, model: str, overwrite: bool) -> None:
    """``dataset_description.json`` of the BIDS derivatives data set (written once)."""
    from cyclegan import __version__

    path = output / DERIVATIVES / "dataset_description.json"
    if path.exists() and not overwrite:
        return
    write_json(path, {
        "Name": "mri-cyclegan translations (T1w <-> T2w)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "mri-cyclegan", "Version": __version__,
                         "Description": f"CycleGAN contrast translation with the model {model}"}],
    })


# -- the run -------------------------------------------------------------------------------
def _contrast_text(report: dict | None, chosen: bool) -> str:
    contrast = (report or {}).get("contrast")
    if not contrast:
        return ""
    text = f"looks {contrast['looks_like']} (p_T2 {contrast['t2_probability']:.2f})"
    return text + (", direction chosen by it" if chosen else "")


class Progress:
    """A progress bar over inputs (and a volume's slices) on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None
        if self.stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # plain lines, then
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="input", file=self.stream, dynamic_ncols=True)
        self.total = total
        self.slices = None

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def slice_progress(self):
        """``progress(stage, done, total)`` for a volume's slices (a second bar on a terminal)."""
        if self.bar is None:
            return None
        from tqdm import tqdm

        def update(stage, done, total):
            if self.slices is None or self.slices.desc != stage:
                self.close_slices()
                self.slices = tqdm(total=total, desc=stage, unit="slice", leave=False, position=1,
                                   file=self.stream, dynamic_ncols=True)
            self.slices.n = done
            self.slices.refresh()

        return update

    def close_slices(self) -> None:
        if self.slices is not None:
            self.slices.close()
            self.slices = None

    def advance(self) -> None:
        self.close_slices()
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        self.close_slices()
        if self.bar is not None:
            self.bar.close()


def translate_job(translator, job: Job, config: TranslateConfig, progress: Progress) -> dict:
    """Translate one input; returns its report row (raises :class:`cyclegan.errors.CycleGANError`
    for a bad input)."""
    from cyclegan.files import load_volume, read_image_file
    from cyclegan.translate import looks_like, translate_image, translate_volume

    volume = gray = bits = None
    if is_volume(job.source):
        volume = load_volume(str(job.source), config.plane)
    else:
        gray, bits = read_image_file(job.source)
    direction, chosen = config.direction, config.direction == "auto"
    if chosen and job.bids_contrast:  # a BIDS file's suffix names its contrast
        direction, chosen = job.natural_direction, False
    elif chosen:
        direction = looks_like(translator, image=gray, volume=volume)[0]
    output = job.output(direction)
    if volume is not None:
        result = translate_volume(translator, volume, direction, config.batch_size,
                                  progress.slice_progress())
        write_atomically(output, lambda p: volume.write(result.translation, p, keep_dtype=True))
    else:
        result = translate_image(translator, gray, direction, bits)
        write_atomically(output, lambda p: save_image(result.translation, p, bits))
    report = result.report
    notes = []
    contrast = report.get("contrast") or {}
    if job.bids_contrast and contrast.get("mismatch"):
        notes.append(f"the file is named {job.bids_contrast} but the contrast check says it looks "
                     f"{contrast['looks_like']}-weighted")
    order = report.get("tissue_order")
    if order and not order["in_order"]:
        notes.append(f"the translation's CSF ({order['csf']:.2f}) and white matter ({order['wm']:.2f}) are not "
                     f"in the order of its target contrast")
    if report.get("resampled"):
        notes.append("translated on 1 mm pixels and resampled back")
    if job.bids_path is not None:
        sidecar = output.with_name(output.name[: -len(suffix_of(output))] + ".json")
        write_json(sidecar, {"Sources": [f"bids::{job.bids_path.as_posix()}"],
                             "Description": f"{direction.replace('_to_', ' -> ').upper()} translation by "
                                            f"mri-cyclegan ({translator.source})",
                             "Plane": config.plane, "MeanRoundTripError": report["mean_cycle_error"],
                             "Verdict": report["verdict"]})
    return {"output": str(output), "status": "translated", "direction": direction,
            "contrast_check": _contrast_text(report, chosen), "mean_cycle_error": report["mean_cycle_error"],
            "verdict": report["verdict"] or "", "message": "; ".join(notes)}


def read_report(path: Path) -> dict:
    """Rows of an earlier run's ``report.csv`` by input (empty when there is none or it is unreadable)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["input"]: row for row in csv.DictReader(handle) if row.get("input")}
    except (OSError, csv.Error, KeyError, UnicodeDecodeError):
        return {}


def write_report(path: Path, rows: list[dict]) -> None:
    def write(partial):
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REPORT_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in REPORT_FIELDS})

    write_atomically(path, write)


def _existing(job: Job, config: TranslateConfig) -> Path | None:
    """An output of ``job`` that exists already (either direction's under ``auto``)."""
    if config.overwrite or job.error:
        return None
    if config.direction != "auto":
        directions = (config.direction,)
    elif job.bids_contrast:
        directions = (job.natural_direction,)
    else:
        directions = ("t1_to_t2", "t2_to_t1")
    for direction in directions:
        if job.output(direction).exists():
            return job.output(direction)
    return None


def run(inputs: list[str], output: Path, config: TranslateConfig, translator=None, stream=None) -> int:
    """Translate every input into ``output``; returns the exit status. ``translator`` defaults to
    the model ``config.model`` names (loaded only when some input needs it)."""
    from cyclegan.errors import CycleGANError, ModelLoadError

    stream = stream or sys.stderr
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} exists and is not a folder")
    jobs, roots = find_inputs(inputs, output, config.direction)
    seen: dict[Path, Job] = {}
    for job in jobs:  # two inputs of one name given as files would write one output
        key = job.output(job.natural_direction) if not job.error else None
        if key is not None and key in seen:
            job.error = f"its output would overwrite that of {seen[key].label}; translate it into another --output"
        elif key is not None:
            seen[key] = job
    output.mkdir(parents=True, exist_ok=True)
    earlier = read_report(output / REPORT)
    todo = [job for job in jobs if not job.error and _existing(job, config) is None]
    if todo and translator is None:
        from cyclegan.hub import load_generators

        try:
            translator = load_generators(config.model, precision=config.precision)
        except ModelLoadError as err:
            raise UsageError(f"the model cannot be loaded: {err}") from None
    if config.direction == "auto" and todo:
        from cyclegan.translate import calibration_of

        if not calibration_of(translator).get("contrast_check"):
            raise UsageError("the model stores no contrast check, so --direction auto cannot choose; give "
                             "--direction t1_to_t2 or t2_to_t1")
    if roots and translator is not None:
        describe_derivatives(output, translator.source, config.overwrite)
    progress = Progress(len(jobs), stream)
    bad = sum(bool(job.error) for job in jobs)
    progress.line(f"{len(jobs)} input{'s' if len(jobs) != 1 else ''} ({len(jobs) - len(todo) - bad} translated "
                  f"before, {bad} not readable); model: {getattr(translator, 'source', None) or '-'}")
    rows = []
    try:
        for number, job in enumerate(jobs, 1):
            start = time.perf_counter()
            row = {"input": job.label}
            existing = _existing(job, config)
            if job.error:
                row.update(status="failed", message=job.error)
            elif existing is not None:
                before = earlier.get(job.label, {})
                row.update({k: before.get(k, "") for k in REPORT_FIELDS if k not in ("input", "status", "seconds",
                                                                                     "message")})
                row.update(output=str(existing), status="skipped",
                           message="its output exists (from an earlier run); --overwrite translates it again")
            else:
                try:
                    row.update(translate_job(translator, job, config, progress))
                except CycleGANError as err:
                    row.update(status="failed", message=str(err))
                except MemoryError:
                    row.update(status="failed", message="the input is too large to process")
                except OSError as err:
                    row.update(status="failed", message=f"{type(err).__name__}: {err.strerror or err}")
                row["seconds"] = round(time.perf_counter() - start, 2)
            rows.append(row)
            progress.advance()
            progress.line(_log_line(number, len(jobs), row))
            write_report(output / REPORT, rows)
    finally:
        progress.close()
    print(summary(rows, output / REPORT), file=sys.stdout if stream is sys.stderr else stream, flush=True)
    return FAILED if any(row["status"] == "failed" for row in rows) else OK


def _log_line(number: int, total: int, row: dict) -> str:
    head = f"[{number}/{total}] {row['input']}"
    if row["status"] == "failed":
        return f"{head}: FAILED: {row['message']}"
    if row["status"] == "skipped":
        return f"{head}: skipped, {row.get('output')} exists"
    contrast = f", {row['contrast_check']}" if row.get("contrast_check") else ""
    return (f"{head} -> {row['output']} ({row['direction']}{contrast}; round-trip error "
            f"{row['mean_cycle_error']}, {row['verdict'] or 'no verdict'}; {row['seconds']} s)")


def summary(rows: list[dict], report: Path, limit: int = 40) -> str:
    """The end-of-run table: one line per input (the failures always, the rest up to ``limit``),
    then the counts and where the full report is."""
    columns = ("input", "status", "direction", "mean_cycle_error", "verdict", "seconds")
    shown = [r for r in rows if r["status"] == "failed"]
    shown += [r for r in rows if r["status"] != "failed"][: max(0, limit - len(shown))]
    table = [columns] + [tuple(_cell(row.get(c, "")) for c in columns) for row in shown]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    out = io.StringIO()
    for k, line in enumerate(table):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n")
        if k == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    if len(shown) < len(rows):
        out.write(f"... and {len(rows) - len(shown)} more in the report\n")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("translated", "skipped", "failed")}
    verdicts: dict = {}
    for r in rows:
        if r["status"] == "translated" and r.get("verdict"):
            verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    out.write(f"{counts['translated']} translated, {counts['skipped']} skipped (output exists), "
              f"{counts['failed']} failed")
    if verdicts:
        out.write(" | verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
    out.write(f"\nreport: {report}")
    return out.getvalue()


def _cell(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else "..." + text[-57:]


# -- the command line ----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mri-cyclegan", description="T1-weighted <-> T2-weighted brain-MRI "
                                     "translation with a CycleGAN.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    translate = commands.add_parser(
        "translate", formatter_class=HelpFormatter,
        help="translate files, folders and BIDS data sets",
        description="Translate NIfTI volumes and PNG / JPEG / TIFF slices (files, folders searched recursively, "
                    "or BIDS data sets) into --output, each output named after its input. Writes report.csv "
                    "there; exit status 0 when all were translated, 1 when any failed, 2 for a usage error.")
    translate.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or BIDS data sets")
    translate.add_argument("--output", "-o", required=True, type=Path, metavar="DIR", help="output folder")
    add_arguments(translate, TranslateConfig)
    return parser


def main(argv=None) -> int:
    from cyclegan.errors import ConfigError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the problem (or the help)
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    try:
        fields = {k: v for k, v in vars(args).items() if k not in ("command", "inputs", "output")}
        config = TranslateConfig(**fields)
        return run(args.inputs, args.output, config)
    except (ConfigError, UsageError) as err:
        print(f"mri-cyclegan translate: error: {err}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("mri-cyclegan translate: interrupted; run the same command again to continue "
              "(translated inputs are skipped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
