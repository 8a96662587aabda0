"""Reading vendor images: decode a PNG/JPEG fully or fail with an error that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ImageReadError(ValueError):
    """A vendor image that cannot be decoded (truncated, corrupt, not an image); the caller quarantines it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot decode image {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def read_rgb(path: Path) -> np.ndarray:
    """Decode the whole image at `path` into an (H, W, 3) uint8 RGB array, or raise ImageReadError."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode every byte now: a truncated file fails here, not later in a model
            rgb = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"{type(exc).__name__}: {exc}") from exc
    except ImportError as exc:
        # Once ultralytics is imported it patches Image.open to retry unidentified files with a HEIF plugin it
        # tries to install; offline that import fails. The file was not identifiable either way.
        raise ImageReadError(path, f"not a decodable image (no decoder identified it; {exc})") from exc
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageReadError(path, f"unexpected image shape {rgb.shape}")
    return rgb


def read_gray(path: Path) -> np.ndarray:
    """Decode the image at `path` as float32 luminance (ITU-R 601 weights, 0-255), or raise ImageReadError."""
    rgb = read_rgb(path).astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
