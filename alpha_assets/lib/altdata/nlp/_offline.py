"""Make transformers usable offline on CPU before it is imported.

Two things: the hub is switched off (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``) so nothing tries to download,
and, when torchvision's compiled operators cannot load (the CUDA torchvision build next to a CPU torch; see
STACK.md), a pure-torch CPU ``torchvision::nms``/``qnms`` is registered so ``import torchvision`` — which
``transformers`` does from its model code — succeeds. The shim is skipped when the compiled operators load or
another module already defined them, so a working CUDA install is never touched. It coexists with the vision
package's ``ensure_torchvision_ops`` (same op schemas and NMS semantics; whichever runs first registers, the other
sees the ops and leaves them).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_prepared = False
_shim_library: Any = None  # keeps the torch.library registration alive


def _nms_cpu(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression with torchvision's semantics (boxes as x1, y1, x2, y2)."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True, stable=True)
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool)
    keep = []
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        w = (torch.minimum(x2[idx], x2) - torch.maximum(x1[idx], x1)).clamp(min=0)
        h = (torch.minimum(y2[idx], y2) - torch.maximum(y1[idx], y1)).clamp(min=0)
        inter = w * h
        iou = inter / (areas[idx] + areas - inter)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def _qnms_cpu(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    return _nms_cpu(boxes.dequantize(), scores.dequantize(), iou_threshold)


def _torchvision_ops_missing() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False  # no torchvision: transformers will not import it
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018 - defined already (compiled ops or another shim)
        return False
    except (AttributeError, RuntimeError):
        pass
    for lib in sorted(Path(spec.origin).parent.glob("_C*.so")) + sorted(
        Path(spec.origin).parent.glob("_C*.pyd")
    ):
        try:
            torch.ops.load_library(str(lib))
            return False
        except (OSError, RuntimeError):
            continue
    return True


def prepare_offline_torch() -> None:
    """Set the offline environment and, if needed, the torchvision operator shim. Idempotent."""
    global _prepared, _shim_library
    with _lock:
        if _prepared:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if _torchvision_ops_missing():
            import torch

            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.impl("nms", _nms_cpu, "CPU")
            lib.impl("qnms", _qnms_cpu, "CPU")
            lib.impl("qnms", _qnms_cpu, "QuantizedCPU")
            _shim_library = lib
        _prepared = True
