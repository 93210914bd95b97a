"""``python -m train``: the train command. It turns its flags (or a recipe file's keys, see
:mod:`cyclegan.recipe`) into the configuration dataclasses and runs :func:`cyclegan.pipeline.train`,
which streams the data sets, trains, exports and pushes.

Run the same command again after an interruption (even ``kill -9``) and it continues from the last
epoch's backup with the same optimizer state, learning-rate schedule and image pools.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from cyclegan import recipe as recipes
from cyclegan.config import DERIVED, DataConfig, ModelConfig, RunOptions, TrainConfig, preset
from cyclegan.recipe import train_parser

EXIT_USAGE, EXIT_PUSH_FAILED, EXIT_INTERRUPTED = 2, 3, 130

log = logging.getLogger("train")


def build_parser(explicit_only: bool = False):
    """The command line, built from the configuration dataclasses (:func:`cyclegan.recipe.train_parser`)."""
    return train_parser(explicit_only)


def _explicit(argv) -> set:
    """The options a command line gives itself (not left to their defaults)."""
    return recipes.explicit(list(argv if argv is not None else sys.argv[1:]))


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _given(args, cls) -> dict:
    """The fields of ``cls`` as parsed; flags left at a derived default (None) are left out."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return {k: v for k, v in values.items() if v is not None or k not in DERIVED[cls]}


def _configs(args):
    """(ModelConfig, TrainConfig, DataConfig, RunOptions) of a parsed command line; the
    configs check themselves, and :func:`cyclegan.pipeline.train` checks them together."""
    run = RunOptions(**_given(args, RunOptions))
    model_config = preset(run.preset).replace(**_given(args, ModelConfig))
    train = _given(args, TrainConfig)
    train.setdefault("decay_epochs", train.get("epochs", TrainConfig().epochs) // 2)
    data = _given(args, DataConfig)
    data["pairs"] = tuple("" if p.lower() == "none" else p for p in data.get("pairs", ()))
    data_config = DataConfig(**data)
    train_config = TrainConfig(**train)
    return model_config, train_config, data_config, run


def main(argv=None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = "python -m train " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.config:
            return _run_recipe(args.config, argv, parser, command)
        return _start(args, argv, command)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume from the last epoch", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as err:  # the library's own errors are ValueErrors with clear messages
        return fail(str(err))


def _start(args, argv, command) -> int:
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    from cyclegan.pipeline import train

    model_config, train_config, data_config, run = _configs(args)
    result = train(model_config, train_config, data_config, run, given=_explicit(argv), command=command)
    return EXIT_PUSH_FAILED if result.push_failed else 0


def _without(argv: list, flag: str) -> list:
    """``argv`` less ``flag`` and its value."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == flag:
            skip = True
        elif not token.startswith(flag + "="):
            out.append(token)
    return out


def _run_recipe(path, argv, parser, command) -> int:
    """Run the recipe file ``path``, its keys overridden by the flags of ``argv``: one run, or its
    stages one after the other (those done skipped)."""
    values = recipes.read(path)
    flags = _without(argv, "--config")
    staged = "stage" in values
    if staged:  # --output on the command line is the recipe's folder, not a stage's
        output = vars(parser.parse_args(flags)).get("output")
        if "output" in _explicit(flags):
            values["output"] = output
            flags = _without(flags, "--output")
    found = recipes.stages(values, str(path))
    for number, (name, keys) in enumerate(found, 1):
        merged = recipes.merged_argv(keys, flags, parser, f"{path}" + (f", stage {name}" if name else ""))
        args = parser.parse_args(merged)
        if name is not None:
            done = Path(args.output) / recipes.STAGE_DONE
            if done.is_file():
                log.info("stage %d of %d (%s) already done in %s", number, len(found), name, args.output)
                continue
            log.info("stage %d of %d (%s) into %s", number, len(found), name, args.output)
        code = _start(args, merged, command + (f"  # stage {name}" if name else ""))
        if code:
            return code
        if name is not None:
            (Path(args.output) / recipes.STAGE_DONE).write_text(json.dumps({"stage": name, "of": len(found)}))
    return 0
