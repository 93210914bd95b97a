"""The package declares what it needs, and ships the default model."""

import tomllib

from conftest import ROOT


def requirement_lines(path):
    return sorted(line.strip() for line in path.read_text().splitlines()
                  if line.strip() and not line.startswith(("#", "-r")))


def test_pyproject_declares_the_runtime_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(project["dependencies"]) == requirement_lines(ROOT / "requirements.txt")


def test_package_data_ships_every_default_model_file():
    import fnmatch

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["cyclegan.default_model"]
    files = [p.name for p in (ROOT / "cyclegan" / "default_model").iterdir() if p.is_file()]
    assert {"config.json", "t1_to_t2.keras", "t2_to_t1.keras", "README.md"} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
    assert "cyclegan.default_model" in setuptools["packages"] and "train" in setuptools["packages"]


def test_readme_quality_tables_are_the_default_models(tmp_path):
    """The README's quality tables are generated from the shipped model's config.json."""
    from train import readme

    assert readme.main(["--check"]) == 0
    changed = tmp_path / "README.md"
    changed.write_text((ROOT / "README.md").read_text().replace("| T1 → T2 | 0.", "| T1 → T2 | 1.", 1))
    assert readme.main(["--check", "--readme", str(changed)]) == 1
    assert readme.main(["--readme", str(changed)]) == 0 and readme.main(["--check", "--readme", str(changed)]) == 0
    assert changed.read_text() == (ROOT / "README.md").read_text()


def test_the_console_script_is_declared_and_resolves():
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["mri-cyclegan"].partition(":")
    main = getattr(importlib.import_module(module), name)
    assert main(["--help"]) == 0 and main([]) == 2
