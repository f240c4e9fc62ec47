"""Drawing predictions onto a photo: one box per face, coloured by label, with label and confidence."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from emotion.predictor import FacePrediction

# Colour-blind-safe pair (Okabe-Ito orange and blue) for the usual two labels; others cycle.
LABEL_COLORS = {"happy": (230, 159, 0), "sad": (0, 114, 178)}
OTHER_COLORS = [(0, 158, 115), (204, 121, 167), (213, 94, 0), (86, 180, 233), (240, 228, 66), (120, 120, 120)]


def label_color(label: str, class_names: list[str]) -> tuple[int, int, int]:
    """The colour a label is drawn in, stable for a model's class list."""
    if label.lower() in LABEL_COLORS:
        return LABEL_COLORS[label.lower()]
    index = class_names.index(label) if label in class_names else 0
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def draw_predictions(image: np.ndarray, predictions: list[FacePrediction], class_names: list[str]) -> np.ndarray:
    """A copy of the RGB uint8 `image` with each face's box and "label 93%" drawn on it."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    # Line and text scale with the photo so they stay readable on a phone photo and a thumbnail.
    line_width = max(2, round(max(canvas.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 40)))
    for prediction in predictions:
        box = prediction.box
        color = label_color(prediction.label, class_names)
        draw.rectangle([box.x, box.y, box.x + box.width - 1, box.y + box.height - 1], outline=color, width=line_width)
        text = f"{prediction.label} {prediction.confidence:.0%}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_width, text_height = right - left, bottom - top
        pad = max(2, line_width)
        # Above the box when there is room, inside its top edge otherwise.
        label_top = box.y - text_height - 2 * pad if box.y >= text_height + 2 * pad else box.y
        draw.rectangle([box.x, label_top, box.x + text_width + 2 * pad, label_top + text_height + 2 * pad], fill=color)
        draw.text((box.x + pad - left, label_top + pad - top), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)
