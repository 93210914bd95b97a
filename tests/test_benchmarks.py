"""Every benchmark's --quick mode runs and prints what it promises, so that none can rot.

These check that the benchmarks work, not how fast anything is: speed goals are measured by
running the benchmarks themselves.
"""

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED_DATA


def run_benchmark(name, *args, timeout=900):
    proc = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--quick", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, rows


def test_speed_quick_times_every_part():
    proc, rows = run_benchmark("speed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    benches = {r["bench"] for r in rows}
    assert {"infer", "volume", "cli", "app", "train", "memory"} <= benches, rows
    for row in rows:
        for key in ("median_s", "seconds", "app_round_trip_s", "images_per_s", "volumes_per_minute"):
            if key in row:
                assert row[key] > 0, row
        assert row["machine"]


def test_quality_quick_reports_model_and_baselines():
    proc, rows = run_benchmark("quality")
    assert proc.returncode == 0, proc.stderr[-3000:]
    if any(r.get("set") == "holdout" and r.get("method") == "model" for r in rows):
        # With the users' data set at hand the input checks are calibrated too.
        calibration = [r["calibration"] for r in rows if r.get("method") == "calibration"]
        assert calibration and set(calibration[0]["cycle_error"]) == {"t1_to_t2", "t2_to_t1"}
        assert 0 <= calibration[0]["contrast_check"]["accuracy"]["held_out"] <= 1
        if (SHARED_DATA / "real-t1t2-volumes").is_dir():
            # clinical slices with skull are among the slices the levels are measured on
            assert "slices with skull of each contrast of openmslong04" in calibration[0]["measured_on"]
        named = re.search(r"slices of held-out subject\(s\) (.+?) of real-t1t2;", calibration[0]["measured_on"])
        if named:  # only subjects whose pairs were measured are named
            pairs = (SHARED_DATA / "real-t1t2" / "PAIRS.csv").read_text()
            assert all(f"/{subject}_z" in pairs for subject in named.group(1).split(", ")), named.group(1)
    phantom = [r for r in rows if r.get("set") == "phantom" and "method" in r]
    if not phantom:
        pytest.skip("nilearn is not installed: the phantom cannot be made")
    methods = {r["method"] for r in phantom}
    assert {"model", "identity", "inversion", "histmatch", "cycle", "contrast_order"} <= methods
    for row in phantom:
        if row["method"] == "model":
            assert row["n"] == 2 and -1 <= row["ssim"] <= 1 and row["psnr"] > 0
    edges = {(r["direction"], r["input"]): r for r in phantom if r["method"] == "edge"}
    assert set(edges) == {(d, v) for d in ("t1_to_t2", "t2_to_t1") for v in ("as_given", "16bit")}
    for (direction, variant), row in edges.items():
        assert row["n"] == 2 and row["edge_mae"] >= 0 and row["core_mae"] > 0
        if variant == "16bit":  # the same slices as 16-bit integers translate the same
            given = edges[direction, "as_given"]
            assert row["scale_max_diff"] < 0.01
            for key in ("edge_mae", "edge_bias", "core_bias"):
                assert row[key] == pytest.approx(given[key], abs=0.002), key
    artefacts = {r["direction"]: r for r in phantom if r["method"] == "artefacts"}
    assert set(artefacts) == {"t1_to_t2", "t2_to_t1"} and all(r["n"] == 2 for r in artefacts.values())
    clinical = [r for r in rows if r.get("set") == "clinical" and r.get("method") in ("contrast_order", "artefacts")]
    if clinical:  # the real volumes are at hand: every plane and direction, order and artefacts
        assert {(r["plane"], r["direction"], r["method"]) for r in clinical} == {
            (p, d, m) for p in ("axial", "coronal", "sagittal") for d in ("t1_to_t2", "t2_to_t1")
            for m in ("contrast_order", "artefacts")}
        assert all(0 <= r["pass_fraction"] <= 1 for r in clinical if r["method"] == "contrast_order")
    paired = [r for r in rows if r.get("set") == "clinical_pairs" and r.get("method") in ("model", "identity")]
    if paired:  # registered pairs of a with-skull participant, scored on the truth's own grid
        assert {(r["direction"], r["method"], r["plane"]) for r in paired} >= {
            (d, m, "axial") for d in ("t1_to_t2", "t2_to_t1") for m in ("model", "identity")}
        assert all(r["n"] > 0 and -1 <= r["ssim"] <= 1 for r in paired)


def test_fuzz_quick_finds_no_failure():
    proc, rows = run_benchmark("fuzz")
    assert proc.returncode == 0, proc.stderr[-3000:]
    total = [r for r in rows if r["file_type"] == "all"]
    assert total and total[0]["failures"] == 0 and total[0]["cases"] == 5 * 2 * (5 + 3)


def test_soak_quick_serves_every_kind_of_request():
    proc, rows = run_benchmark("soak", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = [r for r in rows if r["kind"] == "all"][0]
    assert summary["unexpected_errors"] == 0 and summary["requests"] > 0
    assert summary["within_bound"] is True


def test_learning_quick_reports_the_tissue_order():
    proc, rows = run_benchmark("learning")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(rows) == 1 and rows[0]["steps"] == 50
    for direction in ("t1_to_t2", "t2_to_t1"):
        right, total = map(int, rows[0][f"{direction}_order_right"].split("/"))
        assert 0 <= right <= total == 10 and len(rows[0][f"{direction}_csf_gm_wm"]) == 3


def real_folder(path):
    """A real-t1t2 style folder: 6 aligned ellipse pairs, 3 of subject-a and 3 of subject-b."""
    from PIL import Image

    from conftest import ellipse_pairs

    real = path / "real"
    for domain in ("T1", "T2"):
        (real / f"Tr{domain[1]}" / f"Train{domain}").mkdir(parents=True)
    lines = ["t1,t2"]
    for i, (_, t1, t2) in enumerate(ellipse_pairs(6)):
        name = f"{'subject-a' if i < 3 else 'subject-b'}_z{i:03d}.png"
        for domain, image in (("T1", t1), ("T2", t2)):
            Image.fromarray((image * 255).round().astype("uint8")).save(
                real / f"Tr{domain[1]}" / f"Train{domain}" / name)
        lines.append(f"Tr1/TrainT1/{name},Tr2/TrainT2/{name}")
    (real / "PAIRS.csv").write_text("\n".join(lines) + "\n")
    return real


def test_quality_scores_held_out_real_subjects_without_the_users_data_set(tmp_path, tiny_folder):
    """The real set is scored on its own: its histogram references come from a subject not held out."""
    real = real_folder(tmp_path)

    proc, rows = run_benchmark("quality", "--model", str(tiny_folder), "--data", str(tmp_path / "absent"),
                               "--real", str(real), "--real-subjects", "subject-b", "--sets", "real")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"set": "holdout", "skipped": "users' data set not found"} in rows
    real_rows = [r for r in rows if r.get("set") == "real" and "direction" in r]
    for direction in ("t1_to_t2", "t2_to_t1"):
        methods = {r["method"]: r for r in real_rows if r["direction"] == direction}
        assert {"model", "identity", "inversion", "histmatch", "cycle", "contrast_order"} <= set(methods)
        assert methods["model"]["n"] == 2 and -1 <= methods["model"]["ssim"] <= 1
        pads = {r["pad"]: r for r in real_rows if r["direction"] == direction and r["method"] == "framing"}
        assert set(pads) == {32, 96} and all(r["n"] == 2 and -1 <= r["ssim"] <= 1 for r in pads.values())
        assert -1 <= methods["model"]["ssim_frame"] <= 1
        blurred = {r["sigma"]: r for r in real_rows
                   if r["direction"] == direction and r["method"] == "blurred_truth"}
        assert set(blurred) == {0.7, 1.0} and blurred[1.0]["ssim"] < blurred[0.7]["ssim"] < 1


def test_fit_quick_scores_the_held_out_and_the_training_subjects_and_leaves_the_model_as_it_was(
        tmp_path, tiny_folder):
    real = real_folder(tmp_path)
    before = {path.name: path.read_bytes() for path in tiny_folder.iterdir() if path.is_file()}
    proc, rows = run_benchmark("fit", "--model", str(tiny_folder), "--data", str(real), "--held-out", "subject-b")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert rows[0]["held_out"] == "subject-b" and rows[0]["training_subjects"] == ["subject-a"]
    assert rows[0]["pairs"] == 3
    for direction in ("t1_to_t2", "t2_to_t1"):
        steps = {r["step"]: r for r in rows if r.get("direction") == direction}
        assert set(steps) == {0, 2, 4}
        assert all(-1 <= r["ssim_held_out"] <= 1 and -1 <= r["ssim_training"] <= 1 for r in steps.values())
        assert steps[4]["loss"] >= 0 and "loss" not in steps[0]
        # the fit trains: the generator's translations of its training subject change
        assert steps[4]["ssim_training"] != steps[0]["ssim_training"]
    assert {path.name: path.read_bytes() for path in tiny_folder.iterdir() if path.is_file()} == before

    proc, rows = run_benchmark("fit", "--model", str(tiny_folder), "--data", str(real), "--held-out", "nobody")
    assert proc.returncode == 2 and "subject-a, subject-b" in proc.stderr and "Traceback" not in proc.stderr
    proc, rows = run_benchmark("fit", "--data", str(tmp_path / "absent"))
    assert proc.returncode == 0 and rows == [{"skipped": "no PAIRS.csv in absent"}]


def test_quality_refuses_a_clinical_step_below_one():
    proc = subprocess.run([sys.executable, "benchmarks/quality.py", "--clinical-every", "0"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "--clinical-every must be 1 or more" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_speed_times_a_candidate_model_as_a_ratio_of_the_default(tiny_folder):
    proc, rows = run_benchmark("speed", "--only", "infer", "--model", str(tiny_folder))
    assert proc.returncode == 0, proc.stderr[-3000:]
    timed = {r["model"]: r for r in rows if r.get("bench") == "infer" and "median_s" in r}
    candidate = timed[str(tiny_folder)]
    assert candidate["generator_filters"] == 4 and candidate["upsampling"] == "transpose"
    # its time as a ratio of the default's in the same run (the medians are rounded to 0.1 ms)
    default = timed["default"]["median_s"]
    assert candidate["ratio_to_default"] > 0 and "ratio_to_default" not in timed["default"]
    assert abs(candidate["ratio_to_default"] * default - candidate["median_s"]) <= 1e-4 + 1e-3 * default
