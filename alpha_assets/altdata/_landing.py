"""Reading image sidecars (which files are deliveries is the intake layer's rule: ``alpha_assets.intake``)."""

import json
from datetime import date, datetime, timezone
from typing import Any

from resources.landing import VendorLanding


class SidecarError(ValueError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


def read_sidecar(
    landing: VendorLanding, prefix: str, image_name: str, folder_date: date, required: dict[str, type]
) -> dict[str, Any]:
    """The JSON sidecar of an image, validated: required keys with the right types, finite numbers, and a
    ``captured_at`` (ISO, UTC) on the folder's date. Raises SidecarError naming the file and the reason."""
    name = sidecar_name(image_name)
    if not landing.exists(prefix, name):
        raise SidecarError(image_name, f"no sidecar {name} (capture time and geometry are unknown)")
    try:
        doc = json.loads(landing.read_bytes(prefix, name))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SidecarError(name, f"sidecar is not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise SidecarError(name, "sidecar is not a JSON object")
    for key, kind in {**required, "captured_at": str}.items():
        value = doc.get(key)
        ok = isinstance(value, kind) or (
            kind is float and isinstance(value, int) and not isinstance(value, bool)
        )
        if not ok:
            raise SidecarError(name, f"sidecar field '{key}' is missing or not a {kind.__name__}")
        if kind is float and not (value == value and abs(value) != float("inf")):
            raise SidecarError(name, f"sidecar field '{key}' is not finite")
    try:
        captured = datetime.fromisoformat(doc["captured_at"])
    except ValueError as e:
        raise SidecarError(name, f"captured_at {doc['captured_at']!r} is not an ISO timestamp") from e
    captured = captured.replace(tzinfo=timezone.utc) if captured.tzinfo is None else captured
    captured = captured.astimezone(timezone.utc)
    if captured.date() != folder_date:
        raise SidecarError(
            name, f"captured_at {captured.isoformat()} is not on the delivery date {folder_date}"
        )
    doc["captured_at"] = captured
    return doc


def sidecar_name(image_name: str) -> str:
    return image_name.rsplit(".", 1)[0] + ".json"
