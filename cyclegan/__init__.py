"""mri-cyclegan: unpaired T1-weighted <-> T2-weighted brain-MRI translation.

Load the generators in one line::

    from cyclegan import load_generators
    translator = load_generators()            # the default model shipped here
    translator = load_generators("user/repo") # or a Hub repo id / a local folder
    t2 = translator.t1_to_t2(t1_image)        # float32 in [0, 1], same height/width

Importing the package is cheap: Keras is imported only when a name that needs
it is first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ModelConfig": "cyclegan.config",
    "TrainConfig": "cyclegan.config",
    "DataConfig": "cyclegan.config",
    "preset": "cyclegan.config",
    "CycleGANError": "cyclegan.errors",
    "InputImageError": "cyclegan.errors",
    "ModelLoadError": "cyclegan.errors",
    "ConfigError": "cyclegan.errors",
    "DataError": "cyclegan.errors",
    "PushError": "cyclegan.errors",
    "CycleGAN": "cyclegan.training",
    "Translator": "cyclegan.inference",
    "load_generators": "cyclegan.hub",
    "save_pretrained": "cyclegan.hub",
    "push_to_hub": "cyclegan.hub",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cyclegan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
