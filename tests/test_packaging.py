"""The package declares what it needs, and ships the default model."""

import tomllib

from conftest import ROOT


def requirement_lines(path):
    return sorted(line.strip() for line in path.read_text().splitlines()
                  if line.strip() and not line.startswith(("#", "-r")))


def test_pyproject_declares_the_runtime_requirements():
    """The package needs what loading and translating need; its app and train extras add the rest of
    requirements.txt (what the Space installs), and nothing else."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    everything = project["dependencies"] + extras["app"] + extras["train"]
    assert sorted(everything) == requirement_lines(ROOT / "requirements.txt")
    assert not any(d.startswith(("gradio", "datasets", "SimpleITK")) for d in project["dependencies"])


def test_loading_and_translating_need_neither_the_app_nor_the_trainer(tmp_path, tiny_folder):
    """With gradio, datasets and SimpleITK unimportable (as after a plain pip install), a model loads,
    translates a slice and translates a folder from the shell."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from conftest import phantom_slice

    Image.fromarray(phantom_slice(64, 64)).save(tmp_path / "scan.png")
    script = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("gradio", "datasets", "SimpleITK"):
            raise ImportError(name + " is not installed")
sys.meta_path.insert(0, Refuse())
import numpy as np
from cyclegan import load_generators
translator = load_generators({str(tiny_folder)!r})
assert translator.t1_to_t2(np.ones((40, 40)) * np.arange(40)).shape == (40, 40)
from cyclegan.cli import main
sys.exit(main(["translate", {str(tmp_path / "scan.png")!r}, "-o", {str(tmp_path / "out")!r},
               "--model", {str(tiny_folder)!r}, "--direction", "t1_to_t2"]))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "scan_t2w-from-t1w.png").is_file()
    assert np.asarray(Image.open(tmp_path / "out" / "scan_t2w-from-t1w.png")).shape == (64, 64)


def test_package_data_ships_every_default_model_file():
    import fnmatch

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["cyclegan.default_model"]
    files = [p.name for p in (ROOT / "cyclegan" / "default_model").iterdir() if p.is_file()]
    assert {"config.json", "t1_to_t2.keras", "t2_to_t1.keras", "README.md"} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
    assert "cyclegan.default_model" in setuptools["packages"] and "train" in setuptools["packages"]


def test_readme_and_results_tables_are_the_default_models(tmp_path):
    """The README's summary table and docs/results.md's tables are generated from the shipped
    model's config.json, and --check sees a page that drifted."""
    from train import readme

    assert readme.main(["--check"]) == 0
    pages = {"readme": ROOT / "README.md", "results": ROOT / "docs" / "results.md"}
    for kind, page in pages.items():
        changed = tmp_path / page.name
        changed.write_text(page.read_text().replace(" | 0.9", " | 1.9", 1))
        assert changed.read_text() != page.read_text()
        others = {k: str(v) for k, v in pages.items() if k != kind}
        flags = [f"--{kind}", str(changed)] + [x for k, v in others.items() for x in (f"--{k}", v)]
        assert readme.main(["--check", *flags]) == 1
        assert readme.main(flags) == 0 and readme.main(["--check", *flags]) == 0
        assert changed.read_text() == page.read_text()
    assert "| users' held-out pairs |" in pages["readme"].read_text()
    assert "**Held-out real patients" in pages["results"].read_text()


def test_the_readme_is_short_and_has_exactly_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    commands = [line.strip() for line in text.splitlines() if line.startswith("    pip install")]
    assert commands == ["pip install -r requirements.txt && python app.py",
                        "pip install -r requirements-dev.txt && python -m pytest"]
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()


def _markdown_pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "NOTES.md"]


def test_every_relative_link_of_the_readme_and_docs_resolves():
    import re

    checked = 0
    for page in _markdown_pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
            checked += 1
    assert checked >= 10


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The README's five-line example, run from a folder that has the repository's examples."""
    import re

    from PIL import Image

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "load_generators" in b)
    assert len(block.strip().splitlines()) <= 5
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    written = next(tmp_path.glob("*.png"))
    source = Image.open(ROOT / "examples" / "t1w_openmslong04_z028.png")
    with Image.open(written) as out:
        assert out.size == source.size and out.mode == "L"
        assert 20 < sum(out.getdata()) / (out.size[0] * out.size[1]) < 200


def test_the_console_script_is_declared_and_resolves():
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["mri-cyclegan"].partition(":")
    main = getattr(importlib.import_module(module), name)
    assert main(["--help"]) == 0 and main([]) == 2
