"""CPU stand-ins for torchvision's compiled NMS ops, for a CPU torch paired with a CUDA torchvision wheel.

With the CPU torch and the CUDA build of torchvision that pip resolves here, torchvision's compiled ops fail to
load (``libc10_cuda.so`` is missing) and ``import torchvision`` then fails (``operator torchvision::nms does not
exist``), which breaks ultralytics. `ensure_torchvision_ops` defines ``torchvision::nms`` and
``torchvision::qnms`` with pure-torch CPU kernels *before* torchvision is imported, and only when the compiled
ops cannot load, so a working (e.g. CUDA) install is never touched. The other compiled ops (``roi_align``,
``deform_conv2d``, ...) stay unavailable; YOLO detection does not use them.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from typing import Literal

_LOCK = threading.Lock()
_STATE: dict[str, object] = {}

TorchvisionOps = Literal["compiled", "shim", "absent"]


def nms_reference_kernel(boxes, scores, iou_threshold: float):
    """Greedy NMS with torchvision's exact semantics, in pure torch (CPU).

    Boxes are (x1, y1, x2, y2); boxes are visited by descending score (stable for ties) and a box is dropped
    when its IoU with a kept box is strictly greater than `iou_threshold`. Returns kept indices (int64) in
    descending score order.
    """
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, stable=True, descending=True).indices
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    remaining = order
    while remaining.numel() > 0:
        i = remaining[0]
        keep.append(i)
        rest = remaining[1:]
        if rest.numel() == 0:
            break
        width = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        height = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = width * height
        iou = inter / (areas[i] + areas[rest] - inter)
        remaining = rest[~(iou > iou_threshold)]  # NaN IoU (degenerate boxes) keeps the box, as torchvision
    return torch.stack(keep).to(torch.long)


def _nms_cpu(dets, scores, iou_threshold: float):
    import torch

    torch._check(
        dets.dim() == 2 and dets.size(1) == 4, lambda: f"boxes should be (N, 4), got {tuple(dets.shape)}"
    )
    torch._check(scores.dim() == 1 and scores.size(0) == dets.size(0), lambda: "scores should be (N,)")
    return nms_reference_kernel(dets.contiguous(), scores.contiguous(), float(iou_threshold))


def _qnms_cpu(dets, scores, iou_threshold: float):
    return _nms_cpu(dets.dequantize(), scores.dequantize(), iou_threshold)


def _compiled_ops_load() -> bool:
    """Whether torchvision's compiled extension loads (without importing torchvision)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for lib in sorted(Path(folder).glob("_C*")):
            if lib.suffix in {".so", ".pyd", ".dylib"}:
                try:
                    torch.ops.load_library(str(lib))
                    return True
                except (OSError, RuntimeError, ImportError):
                    return False
    return False


def _nms_op_exists() -> bool:
    import torch

    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key("torchvision::nms", "CPU")
    except RuntimeError:
        return False


def _let_box_ops_through() -> None:
    import torchvision.ops.boxes as tv_boxes

    # torchvision guards its box ops with a "compiled ops loaded" check; the NMS ops exist, so let the box ops
    # (nms, batched_nms) through. Other ops keep their guard and fail with torchvision's own message.
    tv_boxes._assert_has_ops = lambda: None


def ensure_torchvision_ops() -> TorchvisionOps:
    """Make ``torchvision.ops.nms`` usable on CPU; returns which implementation is active.

    ``"compiled"``: torchvision's own ops work (nothing changed). ``"shim"``: pure-torch NMS kernels are
    registered (these, or an equivalent shim registered earlier in the process) and torchvision's box ops accept
    them. ``"absent"``: torchvision is not installed (ultralytics then uses its own NMS). Idempotent and
    thread-safe; call it before importing ultralytics or torchvision.
    """
    with _LOCK:
        if "mode" in _STATE:
            return _STATE["mode"]  # type: ignore[return-value]
        if importlib.util.find_spec("torchvision") is None:
            mode: TorchvisionOps = "absent"
        elif _nms_op_exists():
            # Registered by torchvision's library or by another shim: only torchvision knows which.
            import torchvision.extension

            mode = "compiled" if torchvision.extension._has_ops() else "shim"
            if mode == "shim":
                _let_box_ops_through()
        elif _compiled_ops_load():
            mode = "compiled"
        else:
            if "torchvision" in sys.modules:
                raise RuntimeError(
                    "torchvision was imported without its compiled ops; call ensure_torchvision_ops() before "
                    "any import of torchvision, ultralytics or transformers' vision models"
                )
            import torch

            # The Library object must live as long as the process, or the ops are deregistered.
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.impl("nms", _nms_cpu, "CPU")
            lib.impl("qnms", _qnms_cpu, "CPU")
            lib.impl("qnms", _qnms_cpu, "QuantizedCPU")
            _STATE["library"] = lib
            _let_box_ops_through()
            mode = "shim"
        _STATE["mode"] = mode
        return mode
