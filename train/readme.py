"""``python -m train.readme [--check]``: the README's quality tables from the default model's config.json.

The block between ``<!-- quality:start -->`` and ``<!-- quality:end -->`` in README.md is
:func:`cyclegan.card.quality_tables` of the metrics that ``cyclegan/default_model/config.json``
holds (written there by ``python -m train.export ... --quality``), so the README cannot drift from
the model it describes. ``--check`` exits 1 when the README is out of date, without writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- quality:start -->", "<!-- quality:end -->"


def generated_block(config_path: Path) -> str:
    from cyclegan.card import quality_tables

    metrics = json.loads(config_path.read_text(encoding="utf-8")).get("metrics") or {}
    return f"{START}\n\n{quality_tables(metrics).strip()}\n\n{END}"


def updated(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} block")
    head, rest = readme.split(START, 1)
    return head + block + rest.split(END, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--model", default=str(ROOT / "cyclegan" / "default_model"), help="model folder")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    try:
        text = readme.read_text(encoding="utf-8")
        new = updated(text, generated_block(Path(args.model) / "config.json"))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print("README.md's quality tables differ from the model's config.json; run python -m train.readme",
                  file=sys.stderr)
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
