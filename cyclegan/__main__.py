"""``python -m cyclegan``: the ``mri-cyclegan`` command (:mod:`cyclegan.cli`)."""

import sys

from cyclegan.cli import main

sys.exit(main())
