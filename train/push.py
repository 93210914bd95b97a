"""``python -m train.push FOLDER USER/REPO``: upload a saved model folder to the Hub.

Use it to retry a push that failed at the end of a training run; the token
comes from ``HF_TOKEN`` or the saved login (``hf auth login``).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.push",
        description="Upload a model folder written by the train command to the Hugging Face Hub.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("folder", help="model folder (config.json, t1_to_t2.keras, t2_to_t1.keras, README.md)")
    parser.add_argument("repo_id", metavar="USER/REPO", help="Hub model repository (created when missing)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cyclegan.hub import push_to_hub

    try:
        url = push_to_hub(args.folder, args.repo_id, private=args.private)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"pushed {args.folder} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
