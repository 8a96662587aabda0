"""Make transformers usable offline on CPU before it is imported.

Two things: the hub is switched off (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) so nothing tries to download,
and, when torchvision's compiled operators cannot load (the CUDA torchvision build next to a CPU torch; see
STACK.md), the vision package's pure-torch NMS ops are registered (``ensure_torchvision_ops``) so
``import torchvision`` — which ``transformers`` does from its model code — succeeds. A working (e.g. CUDA)
install is never touched.
"""

from __future__ import annotations

import os

from alpha_assets.lib.altdata.vision.torchvision_shim import ensure_torchvision_ops


def prepare_offline_torch() -> None:
    """Set the offline environment and, if needed, the torchvision operator shim. Idempotent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    ensure_torchvision_ops()
