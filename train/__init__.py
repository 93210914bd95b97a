"""The train command: ``python -m train --help``."""
