"""The MIND structure term: modality independent, so it keeps anatomy without fixing the contrast."""

import keras
import numpy as np
import pytest

from conftest import ROOT, ellipse_pairs
from cyclegan.config import TrainConfig
from cyclegan.losses import l1_loss, mind_descriptor, mind_loss
from cyclegan.training import CycleGAN


def batch(image):
    return (np.asarray(image, np.float32) * 2 - 1)[None, ..., None]


def value(x):
    return float(keras.ops.convert_to_numpy(x))


def test_mind_matches_t1_and_t2_of_one_head_not_of_another():
    (_, t1, t2), (_, other_t1, other_t2) = ellipse_pairs(2, size=64)
    same = value(mind_loss(batch(t1), batch(t2)))
    different = value(mind_loss(batch(t1), batch(other_t2)))
    assert same < 0.5 * different
    # In intensities the T1 and T2 of one head are far apart (the tissue order is reversed).
    assert value(l1_loss(batch(t1), batch(t2))) > 0.2
    descriptor = keras.ops.convert_to_numpy(mind_descriptor(batch(t1)))
    assert descriptor.shape == (1, 64, 64, 4) and descriptor.min() > 0 and descriptor.max() <= 1 + 1e-6
    # A contrast-inverted image has exactly the structure of the original.
    assert value(mind_loss(batch(t1), batch(1 - t1))) < 1e-5


def test_structure_term_in_the_generator_loss(tiny_config):
    gan = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, structure_weight=3.0))
    rng = np.random.default_rng(5)
    real_t1, real_t2 = (rng.uniform(-1, 1, (1, 32, 32, 1)).astype("float32") for _ in range(2))
    total, logs, (fake_t1, fake_t2) = gan._generator_losses(real_t1, real_t2, real_t1, real_t2)
    assert value(logs["structure_t2"]) == pytest.approx(3.0 * value(mind_loss(fake_t2, real_t1)), rel=1e-4)
    assert value(logs["structure_t1"]) == pytest.approx(3.0 * value(mind_loss(fake_t1, real_t2)), rel=1e-4)
    others = sum(value(v) for k, v in logs.items() if k != "gen_loss")
    assert value(total) == pytest.approx(others, rel=1e-5)
    off = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0, structure_weight=0.0))._generator_losses(
        real_t1, real_t2, real_t1, real_t2)[1]
    assert value(off["structure_t1"]) == 0.0 and value(off["structure_t2"]) == 0.0
    # On by default (the unpaired recipe).
    default = CycleGAN(tiny_config, TrainConfig(epochs=1, decay_epochs=0))._generator_losses(
        real_t1, real_t2, real_t1, real_t2)[1]
    assert value(default["structure_t1"]) > 0.0


def test_structure_weight_is_a_checked_option():
    from cyclegan.errors import ConfigError

    with pytest.raises(ConfigError, match="structure_weight must be at least 0"):
        TrainConfig(structure_weight=-1.0)
    from train.cli import build_parser

    assert build_parser().parse_args(["--structure-weight", "5"]).structure_weight == 5.0


def _cyclegan_imports() -> dict:
    """{module: the cyclegan modules it imports, at its top or inside a function}."""
    import ast

    package = ROOT / "cyclegan"
    modules = {p.stem for p in package.glob("*.py")}
    graph = {}
    for name in modules:
        deps = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cyclegan."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.ImportFrom) and node.module == "cyclegan":
                deps.update(a.name for a in node.names)
        graph[name] = deps & modules
    return graph


def test_the_library_has_no_import_circle_and_masks_are_the_lowest_level():
    graph = _cyclegan_imports()
    assert graph["masks"] == set() and graph["augment"] >= {"masks"} and "evaluation" not in graph["augment"]
    assert "evaluation" not in graph["losses"]
    done, active = set(), []

    def visit(name):
        assert name not in active, "import circle: " + " -> ".join(active[active.index(name):] + [name])
        if name in done:
            return
        active.append(name)
        for dep in sorted(graph[name]):
            visit(dep)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_each_mask_is_defined_once():
    import re

    defined = {}
    for path in (ROOT / "cyclegan").glob("*.py"):
        for name in re.findall(r"^def (head_mask|head_box|brain_mask|edge_bands)\(", path.read_text(), re.M):
            defined.setdefault(name, []).append(path.name)
    assert defined == {name: ["masks.py"] for name in ("head_mask", "head_box", "brain_mask", "edge_bands")}
