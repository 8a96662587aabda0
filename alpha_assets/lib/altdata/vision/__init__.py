"""Satellite imagery turned into numbers: cars per parking lot (YOLO) and oil-tank fill from shadow geometry.

The modules import OpenCV, SciPy, torch and ultralytics inside the functions that need them, so importing this
package is cheap.
"""

from alpha_assets.lib.altdata.vision.car_detector import (
    car_class_ids_of,
    count_cars,
    load_car_detector,
    new_car_detector,
    train_car_detector,
)
from alpha_assets.lib.altdata.vision.images import ImageReadError, read_gray, read_rgb
from alpha_assets.lib.altdata.vision.tank_analyzer import (
    analyze_tank_array,
    analyze_tank_arrays,
    analyze_tank_image,
)
from alpha_assets.lib.altdata.vision.torchvision_shim import ensure_torchvision_ops

__all__ = [
    "ImageReadError",
    "analyze_tank_array",
    "analyze_tank_arrays",
    "analyze_tank_image",
    "car_class_ids_of",
    "count_cars",
    "ensure_torchvision_ops",
    "load_car_detector",
    "new_car_detector",
    "read_gray",
    "read_rgb",
    "train_car_detector",
]
