"""`mri-cyclegan translate`: files, folders and BIDS data sets from the shell (tiny model)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, ellipse_pairs
from cyclegan.cli import bids_output_name, main, run
from cyclegan.config import TranslateConfig


def to_u8(image01):
    return (np.clip(image01, 0, 1) * 255).astype(np.uint8)


def to_u16(image01):
    return (np.clip(image01, 0, 1) * 65535).astype(np.uint16)


def head_volume(contrast="t1", n=6, size=64):
    """(H, W, n) float32 stack of ellipse heads of one contrast (axial slices, RAS voxel order)."""
    pairs = ellipse_pairs(n, size=size)
    return np.stack([(t1 if contrast == "t1" else t2).T for _, t1, t2 in pairs], axis=-1).astype(np.float32)


def save_nifti(path, data, affine=None, dtype=None):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        data = (data * 1000).astype(dtype)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def read_rows(folder):
    with open(folder / "report.csv", newline="") as handle:
        return {row["input"]: row for row in csv.DictReader(handle)}


def config(**changes):
    return TranslateConfig(**changes)


def test_every_input_kind_keeps_its_format_size_and_bit_depth(tmp_path, tiny_translator):
    import nibabel as nib

    (_, t1, t2), = ellipse_pairs(1, size=64)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(to_u8(t1)).save(inputs / "a8.png")
    Image.fromarray(to_u16(t1)).save(inputs / "a16.png")
    Image.fromarray(to_u8(t1)).convert("RGB").save(inputs / "rgb.jpg", quality=95)
    Image.fromarray(to_u16(t1)).save(inputs / "a16.tif")
    affine = np.diag([0.9, 0.9, 4.0, 1.0])
    save_nifti(inputs / "vol.nii.gz", head_volume("t1", n=10), affine, dtype=np.uint16)
    save_nifti(inputs / "float.nii", head_volume("t1", n=10), affine)
    out = tmp_path / "out"
    status = run([str(inputs)], out, config(direction="t1_to_t2", plane="coronal"), translator=tiny_translator)
    assert status == 0
    expect = {"a8_t2w-from-t1w.png": ("PNG", "L"), "a16_t2w-from-t1w.png": ("PNG", "I;16"),
              "rgb_t2w-from-t1w.jpg": ("JPEG", "L"), "a16_t2w-from-t1w.tif": ("TIFF", "I;16")}
    for name, (fmt, mode) in expect.items():
        with Image.open(out / name) as image:
            assert (image.format, image.mode, image.size) == (fmt, mode, (64, 64)), name
    volume = nib.load(out / "vol_t2w-from-t1w.nii.gz")
    assert volume.shape == (64, 64, 10) and np.allclose(volume.affine, affine)
    assert volume.get_data_dtype() == np.uint16 and 0 <= volume.get_fdata().min() <= volume.get_fdata().max() <= 1
    assert nib.load(out / "float_t2w-from-t1w.nii").get_data_dtype() == np.float32
    rows = read_rows(out)
    assert {r["status"] for r in rows.values()} == {"translated"} and len(rows) == 6
    row = rows[str(inputs / "vol.nii.gz")]
    assert row["direction"] == "t1_to_t2" and float(row["mean_cycle_error"]) >= 0 and float(row["seconds"]) > 0
    assert row["verdict"] in ("typical", "unusual", "likely wrong input")
    assert "resampled back" in row["message"]  # 4 mm slices, cut coronally
    assert not list(out.rglob(".*"))  # no partial files left


def test_folders_are_searched_recursively_and_keep_their_layout(tmp_path, tiny_translator):
    (_, t1, _), (_, other, _) = ellipse_pairs(2, size=48)
    (tmp_path / "in" / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(to_u8(t1)).save(tmp_path / "in" / "top.png")
    Image.fromarray(to_u8(other)).save(tmp_path / "in" / "sub" / "deeper" / "top.png")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"ignored")
    out = tmp_path / "in" / "translated"  # inside the input folder: never searched
    assert run([str(tmp_path / "in")], out, config(direction="t1_to_t2"), translator=tiny_translator) == 0
    assert (out / "top_t2w-from-t1w.png").is_file()
    assert (out / "sub" / "deeper" / "top_t2w-from-t1w.png").is_file()
    assert len(read_rows(out)) == 2
    # Run again: nothing in the output folder is taken for an input.
    assert run([str(tmp_path / "in")], out, config(direction="t1_to_t2"), translator=tiny_translator) == 0
    assert len(read_rows(out)) == 2


def make_bids(root):
    """A BIDS data set of thick-slice volumes (6 slices 6 mm apart): one participant with T1w and T2w, one
    with a session, a T1w and a FLAIR."""
    thick = np.diag([1.0, 1.0, 6.0, 1.0])
    save_nifti(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz", head_volume("t1"), thick)
    save_nifti(root / "sub-01" / "anat" / "sub-01_T2w.nii.gz", head_volume("t2"), thick)
    save_nifti(root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_acq-fast_T1w.nii.gz", head_volume("t1"), thick)
    save_nifti(root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_FLAIR.nii.gz", head_volume("t2"), thick)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy", "BIDSVersion": "1.9.0"}))
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    return root


def test_bids_in_derivatives_out(tmp_path, tiny_translator):
    bids = make_bids(tmp_path / "bids")
    out = tmp_path / "out"
    assert run([str(bids)], out, config(direction="auto"), translator=tiny_translator) == 0
    derivatives = out / "derivatives" / "mri-cyclegan"
    description = json.loads((derivatives / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "mri-cyclegan"
    produced = sorted(p.relative_to(derivatives).as_posix() for p in derivatives.rglob("*.nii.gz"))
    assert produced == ["sub-01/anat/sub-01_desc-mricyclegan_T1w.nii.gz",
                        "sub-01/anat/sub-01_desc-mricyclegan_T2w.nii.gz",
                        "sub-02/ses-a/anat/sub-02_ses-a_acq-fast_desc-mricyclegan_T2w.nii.gz"]
    sidecar = json.loads((derivatives / "sub-01/anat/sub-01_desc-mricyclegan_T2w.json").read_text())
    assert sidecar["Sources"] == ["bids::sub-01/anat/sub-01_T1w.nii.gz"]
    # The FLAIR volume is not a T1w or T2w input; a fixed direction takes only its source contrast.
    fixed = tmp_path / "fixed"
    assert run([str(bids)], fixed, config(direction="t2_to_t1"), translator=tiny_translator) == 0
    assert [p.name for p in fixed.rglob("*.nii.gz")] == ["sub-01_desc-mricyclegan_T1w.nii.gz"]


def test_bids_names():
    assert bids_output_name("sub-1_ses-2_run-1_T1w.nii.gz", "T2w") == "sub-1_ses-2_run-1_desc-mricyclegan_T2w.nii.gz"
    assert bids_output_name("sub-1_desc-n4_T2w.nii", "T1w") == "sub-1_desc-mricyclegan_T1w.nii"


def test_auto_direction_follows_the_contrast_check(tmp_path, tiny_translator):
    pairs = ellipse_pairs(2, size=64)
    for i, (_, t1, t2) in enumerate(pairs):
        Image.fromarray(to_u8(t1)).save(tmp_path / f"first{i}.png")
        Image.fromarray(to_u8(t2)).save(tmp_path / f"second{i}.png")
    out = tmp_path / "out"
    assert run([str(tmp_path / f) for f in ("first0.png", "second0.png", "first1.png", "second1.png")], out,
               config(direction="auto"), translator=tiny_translator) == 0
    rows = read_rows(out)
    for i in range(2):
        first, second = rows[str(tmp_path / f"first{i}.png")], rows[str(tmp_path / f"second{i}.png")]
        assert first["direction"] == "t1_to_t2" and first["output"].endswith(f"first{i}_t2w-from-t1w.png")
        assert second["direction"] == "t2_to_t1" and second["output"].endswith(f"second{i}_t1w-from-t2w.png")
        assert "looks T1" in first["contrast_check"] and "looks T2" in second["contrast_check"]


def test_a_broken_file_among_good_ones(tmp_path, tiny_translator, capsys):
    (_, t1, _), = ellipse_pairs(1, size=48)
    Image.fromarray(to_u8(t1)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b nonsense")
    (tmp_path / "notes.docx").write_bytes(b"PK")
    inputs = [str(tmp_path / n) for n in ("broken.png", "good.png", "broken.nii.gz", "notes.docx", "absent.png")]
    out = tmp_path / "out"
    assert run(inputs, out, config(direction="t1_to_t2"), translator=tiny_translator) == 1
    rows = read_rows(out)
    assert rows[inputs[1]]["status"] == "translated" and (out / "good_t2w-from-t1w.png").is_file()
    reasons = {name: rows[name]["message"] for name in inputs if name != inputs[1]}
    assert all(rows[name]["status"] == "failed" for name in reasons)
    assert "is not a readable PNG, JPEG or TIFF" in reasons[inputs[0]]
    assert "is not a readable NIfTI file" in reasons[inputs[2]]
    assert "not a NIfTI" in reasons[inputs[3]] and reasons[inputs[4]] == "no such file or folder"
    captured = capsys.readouterr()
    assert "1 translated, 0 skipped (output exists), 4 failed" in captured.out
    assert "Traceback" not in captured.err + captured.out and "FAILED: no such file" in captured.err


class InterruptAfter:
    """A translator that is interrupted (Ctrl-C) on its ``n``-th translation."""

    def __init__(self, translator, n):
        self.translator, self.n, self.calls = translator, n, 0

    def __getattr__(self, name):
        return getattr(self.translator, name)

    def cycle_check(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.translator.cycle_check(*args, **kwargs)


def test_an_interrupted_run_continues_where_it_stopped(tmp_path, tiny_translator):
    for i, (_, t1, _) in enumerate(ellipse_pairs(4, size=48)):
        Image.fromarray(to_u8(t1)).save(tmp_path / f"s{i}.png")
    inputs = [str(tmp_path / f"s{i}.png") for i in range(4)]
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(inputs, out, config(direction="t1_to_t2"), translator=InterruptAfter(tiny_translator, 3))
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "s0_t2w-from-t1w.png", "s1_t2w-from-t1w.png"]
    first = (out / "s0_t2w-from-t1w.png").stat().st_mtime_ns
    counting = InterruptAfter(tiny_translator, 0)
    assert run(inputs, out, config(direction="t1_to_t2"), translator=counting) == 0
    assert counting.calls == 2  # only the two not yet translated
    rows = read_rows(out)
    assert [rows[i]["status"] for i in inputs] == ["skipped", "skipped", "translated", "translated"]
    assert rows[inputs[0]]["verdict"] and rows[inputs[0]]["mean_cycle_error"]  # kept from the first run
    assert (out / "s0_t2w-from-t1w.png").stat().st_mtime_ns == first
    again = InterruptAfter(tiny_translator, 0)
    assert run(inputs, out, config(direction="t1_to_t2", overwrite=True), translator=again) == 0
    assert again.calls == 4


def test_inputs_of_one_name_never_overwrite_each_other(tmp_path, tiny_translator):
    (_, t1, _), = ellipse_pairs(1, size=48)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(to_u8(t1)).save(tmp_path / folder / "scan.png")
    out = tmp_path / "out"
    inputs = [str(tmp_path / "a" / "scan.png"), str(tmp_path / "b" / "scan.png")]
    assert run(inputs, out, config(direction="t1_to_t2"), translator=tiny_translator) == 1
    assert "would overwrite that of" in read_rows(out)[inputs[1]]["message"]


def test_usage_errors_exit_2(tmp_path, tiny_folder, capsys):
    assert main(["translate", str(tmp_path), "--output", str(tmp_path / "o"), "--direction", "sideways"]) == 2
    assert main(["translate", str(tmp_path)]) == 2  # no --output
    assert main(["translate", str(tmp_path), "-o", str(tmp_path / "o"), "--batch-size", "0"]) == 2
    assert "batch_size must be between 1 and 512" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["translate", str(tmp_path), "-o", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    (_, t1, _), = ellipse_pairs(1, size=48)
    Image.fromarray(to_u8(t1)).save(tmp_path / "x.png")
    assert main(["translate", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--model",
                 str(tmp_path / "no-model")]) == 2
    assert "the model cannot be loaded" in capsys.readouterr().err
    assert main([]) == 2


def test_the_console_command_with_a_local_model(tmp_path, tiny_folder):
    """`python -m cyclegan translate ... --model FOLDER` in a child process, as from the shell."""
    bids = make_bids(tmp_path / "bids")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cyclegan", "translate", str(bids), "--output", str(out), "--model",
               str(tiny_folder), "--plane", "sagittal", "--batch-size", "3", "--precision", "float32"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 translated, 0 skipped (output exists), 0 failed" in done.stdout
    assert "[3/3]" in done.stderr and "Traceback" not in done.stderr
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "0 translated, 3 skipped" in again.stdout
