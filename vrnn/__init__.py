"""VRNN Handwriting Lab: Variational RNNs (Chung et al. 2015) on handwriting.

Public names (see README and ../shared/CONTRACT.md) are imported lazily so that
`import vrnn` stays fast for the command line and the app.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Ink": "vrnn.ink",
    "InkFormatError": "vrnn.ink",
    "read_ink": "vrnn.formats",
    "write_ink": "vrnn.formats",
    "synthetic_inks": "vrnn.synthetic",
    "VRNNConfig": "vrnn.model",
    "VRNN": "vrnn.model",
    "RNNGMM": "vrnn.model",
    "Trace": "vrnn.inference",
    "Inference": "vrnn.inference",
    "copy_model": "vrnn.model",
    "load_model": "vrnn.model",
    "fit": "vrnn.train",
    "TrainOptions": "vrnn.train",
    "Limits": "vrnn.formats",
    "CheckpointError": "vrnn.checkpoint",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vrnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
