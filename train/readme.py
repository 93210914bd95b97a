"""``python -m train.readme [--check]``: the quality tables of README.md and docs/results.md from the
default model's config.json.

The block between ``<!-- summary:start -->`` and ``<!-- summary:end -->`` in README.md is
:func:`cyclegan.card.summary_table` (one table), and the block between ``<!-- quality:start -->``
and ``<!-- quality:end -->`` in docs/results.md is :func:`cyclegan.card.quality_tables` (every set),
of the metrics that ``cyclegan/default_model/config.json`` holds (written there by ``python -m
train.export ... --quality``), so neither page can drift from the model it describes. ``--check``
exits 1 when a page is out of date, without writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (start marker, end marker, name of the cyclegan.card function that draws the block)
BLOCKS = {"readme": ("<!-- summary:start -->", "<!-- summary:end -->", "summary_table"),
          "results": ("<!-- quality:start -->", "<!-- quality:end -->", "quality_tables")}


def generated_block(config_path: Path, kind: str = "results") -> str:
    from cyclegan import card

    start, end, function = BLOCKS[kind]
    metrics = json.loads(config_path.read_text(encoding="utf-8")).get("metrics") or {}
    return f"{start}\n\n{getattr(card, function)(metrics).strip()}\n\n{end}"


def updated(text: str, block: str, name: str = "the page") -> str:
    start, end = block.split("\n", 1)[0], block.rsplit("\n", 1)[-1]
    if start not in text or end not in text:
        raise ValueError(f"{name} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    return head + block + rest.split(end, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--results", default=str(ROOT / "docs" / "results.md"))
    parser.add_argument("--model", default=str(ROOT / "cyclegan" / "default_model"), help="model folder")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    args = parser.parse_args(argv)
    config = Path(args.model) / "config.json"
    stale = []
    for kind, page in (("readme", Path(args.readme)), ("results", Path(args.results))):
        try:
            text = page.read_text(encoding="utf-8")
            new = updated(text, generated_block(config, kind), page.name)
        except (OSError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if new == text:
            continue
        if args.check:
            stale.append(page.name)
        else:
            page.write_text(new, encoding="utf-8")
            print(f"updated {page}")
    if stale:
        print(f"{', '.join(stale)}: quality tables differ from the model's config.json; run python -m train.readme",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
