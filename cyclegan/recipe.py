"""Training recipes as TOML files: ``python -m train --config FILE.toml [flags]``.

A recipe's keys are the train command's flags without their dashes (``dataset``, ``paired-weight``;
``paired_weight`` is read too). A flag given more than once takes a list (``dataset = ["a", "b"]``),
a flag of several values a list too (``planes = ["axial", "coronal"]``), a switch ``true``. Flags on
the command line override the file's, key by key (a ``--dataset`` on the command line replaces the
file's whole list).

A recipe of several stages has ``[[stage]]`` tables, each a set of keys over the top-level ones;
each stage writes ``OUTPUT/stage-N`` (or ``OUTPUT/NAME`` with ``name = "..."``) and starts from the
model of the stage before it (``init-from``), unless it says otherwise. A stage that finished is
skipped when the recipe runs again, and one that was interrupted resumes, so a recipe of long
stages runs again until it is done.

Every run writes the recipe it resolved to (every option, defaults included) to
``OUTPUT/recipe.toml``: ``python -m train --config runs/x/recipe.toml --output runs/y`` replays it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from cyclegan.config import TRAIN_GROUPS, HelpFormatter, add_arguments
from cyclegan.errors import ConfigError

RECIPE_FILE = "recipe.toml"
PROG = "python -m train"
#: Written in a stage's folder when the stage finished, so that the recipe skips it next time.
STAGE_DONE = "stage_done.json"


def _actions(parser: argparse.ArgumentParser) -> dict:
    """{key: action} for every flag of ``parser``, under its flag name without dashes."""
    return {a.option_strings[-1].lstrip("-"): a for a in parser._actions
            if a.option_strings and a.dest not in ("help", "config")}


def read(path) -> dict:
    """The TOML file ``path`` as a dict, or a ConfigError that says what is wrong with it."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the recipe {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not a TOML file: {err}") from None


def to_argv(values: dict, parser: argparse.ArgumentParser, source: str = "the recipe") -> list[str]:
    """The flags that ``values`` (a recipe's keys) stand for, checked against ``parser``."""
    actions = _actions(parser)
    argv = []
    for key, value in values.items():
        flag = key.replace("_", "-")
        action = actions.get(flag)
        if action is None:
            raise ConfigError(f"{source}: unknown key {key!r} (the keys are the train command's flags without "
                              f"their dashes: {', '.join(sorted(actions))})")
        if isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a value or a list, not a table")
        if isinstance(action, argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {key} is a switch: give true or false, not {value!r}")
            argv += [f"--{flag}"] if value else []
            continue
        if value is None:
            continue
        many = isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*")
        items = list(value) if isinstance(value, list) else [value]
        if isinstance(value, list) and not many:
            raise ConfigError(f"{source}: {key} takes one value, not a list")
        if not items:
            continue
        if isinstance(action, argparse._AppendAction):
            for item in items:
                argv += [f"--{flag}", _token(item)]
        else:
            argv += [f"--{flag}", *map(_token, items)]
    return argv


def _token(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def explicit(argv: list[str]) -> set:
    """The options the train command's line ``argv`` gives itself (not left to their defaults)."""
    return set(vars(train_parser(explicit_only=True).parse_args(argv)))


def merged_argv(values: dict, argv: list[str], parser: argparse.ArgumentParser, source: str) -> list[str]:
    """The recipe's flags, less those the command line ``argv`` gives itself, then ``argv``."""
    overridden = explicit(argv)
    actions = _actions(parser)
    kept = {k: v for k, v in values.items()
            if not (k.replace("_", "-") in actions and actions[k.replace("_", "-")].dest in overridden)}
    return to_argv(kept, parser, source) + argv


def stages(recipe: dict, source: str) -> list[tuple[str | None, dict]]:
    """The stages of a recipe as (name, keys): one, unnamed (its top-level keys), without
    ``[[stage]]`` tables, else each table over the top-level keys, with its ``output`` and
    ``init-from`` filled in."""
    recipe = dict(recipe)
    tables = recipe.pop("stage", None)
    if tables is None:
        return [(None, recipe)]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{source}: [[stage]] must be a list of tables")
    output = recipe.pop("output", None)
    if not output:
        raise ConfigError(f"{source}: a recipe of stages needs an output (the stages go in folders inside it)")
    found, previous = [], None
    for number, table in enumerate(tables, 1):
        table = dict(table)
        name = str(table.pop("name", f"stage-{number}"))
        if not name or Path(name).name != name or name in (".", ".."):
            raise ConfigError(f"{source}: stage {number}'s name {name!r} must be a plain folder name")
        stage = {**recipe, **table}
        stage.setdefault("output", str(Path(output) / name))
        if previous is not None and "init-from" not in table and "init_from" not in table:
            stage["init-from"] = previous
        found.append((name, stage))
        previous = stage["output"]
    return found


def resolved(configs: dict, parser: argparse.ArgumentParser) -> str:
    """TOML of every option of ``configs`` ({dest: value} of the resolved configs), under the
    flags' names, in the command line's order: what ``recipe.toml`` holds."""
    lines = ["# The options this run resolved to, defaults included; replay with",
             "# python -m train --config recipe.toml --output OTHER_FOLDER", ""]
    for key, action in _actions(parser).items():
        if action.dest not in configs:
            continue
        value = configs[action.dest]
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def train_parser(explicit_only: bool = False) -> argparse.ArgumentParser:
    """The command line; with ``explicit_only`` every default is left out, so that parsing
    tells which options a command gives itself."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train a T1 <-> T2 CycleGAN and (optionally) push it to the Hugging Face Hub.",
        formatter_class=HelpFormatter,
    )
    for title, cls in TRAIN_GROUPS:
        group = p.add_argument_group(title)
        add_arguments(group, cls)
        if title == "run":
            group.add_argument("--config", default=None, metavar="FILE.toml",
                               help="read the options from a recipe file (keys: the flags' names); flags given "
                                    "here override it; a recipe of [[stage]] tables runs each stage from the one "
                                    "before (see cyclegan/recipe.py)")
    if explicit_only:
        for action in p._actions:
            action.default = argparse.SUPPRESS
    return p
