"""Drawing predictions onto a photo: one box per face, coloured by label, with label and confidence.

An uncertain face is drawn in neutral grey with "unsure (leans happy, 58%)", never as a confident label.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from emotion.predictor import FacePrediction

# Okabe-Ito's colour-blind-safe palette: one colour for each of the seven emotions (happy orange and sad
# blue, as always), the rest for other classes in turn. Text is black or white, whichever reads on the fill.
LABEL_COLORS = {"happy": (230, 159, 0), "sad": (0, 114, 178), "angry": (213, 94, 0), "disgust": (0, 158, 115),
                "fear": (204, 121, 167), "neutral": (86, 180, 233), "surprise": (240, 228, 66)}
UNSURE_COLOR = (120, 120, 120)  # neutral grey: no label's colour for a face the model is unsure of
HIGHLIGHT_COLOR = (255, 255, 255)  # the outline around a face the visitor picked in the table or gallery
OTHER_COLORS = [(0, 158, 115), (204, 121, 167), (213, 94, 0), (86, 180, 233), (240, 228, 66)]


def label_color(label: str, class_names: list[str]) -> tuple[int, int, int]:
    """The colour a label is drawn in, stable for a model's class list."""
    if label.lower() in LABEL_COLORS:
        return LABEL_COLORS[label.lower()]
    index = class_names.index(label) if label in class_names else 0
    return OTHER_COLORS[index % len(OTHER_COLORS)]


def box_color(prediction: FacePrediction, class_names: list[str]) -> tuple[int, int, int]:
    return UNSURE_COLOR if prediction.uncertain else label_color(prediction.label, class_names)


def text_color(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light fills (yellow, sky blue), white on dark ones: whichever contrasts more (WCAG luminance)."""
    channels = [value / 255 for value in fill]
    linear = [value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4 for value in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return (0, 0, 0) if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else (255, 255, 255)


def draw_predictions(image: np.ndarray, predictions: list[FacePrediction], class_names: list[str],
                     highlight: int | None = None) -> np.ndarray:
    """A copy of the RGB uint8 `image` with each face's box and "label 93%" drawn on it.

    The face at index `highlight` gets a white outline around its box as well.
    """
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    # Line and text scale with the photo so they stay readable on a phone photo and a thumbnail.
    line_width = max(2, round(max(canvas.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 40)))
    for index, prediction in enumerate(predictions):
        box = prediction.box
        color = box_color(prediction, class_names)
        draw.rectangle([box.x, box.y, box.x + box.width - 1, box.y + box.height - 1], outline=color, width=line_width)
        if index == highlight:
            draw.rectangle([box.x - line_width, box.y - line_width, box.x + box.width - 1 + line_width,
                            box.y + box.height - 1 + line_width], outline=HIGHLIGHT_COLOR, width=line_width)
        text = prediction.verdict
        text = text[:1].upper() + text[1:] if prediction.uncertain else text  # "Unsure (leans happy, 58%)"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_width, text_height = right - left, bottom - top
        pad = max(2, line_width)
        # Above the box when there is room, inside its top edge otherwise; moved left to stay in the photo
        # when the face is near its right edge.
        label_top = box.y - text_height - 2 * pad if box.y >= text_height + 2 * pad else box.y
        label_left = max(0, min(box.x, canvas.width - text_width - 2 * pad))
        draw.rectangle([label_left, label_top, label_left + text_width + 2 * pad, label_top + text_height + 2 * pad],
                       fill=color)
        draw.text((label_left + pad - left, label_top + pad - top), text, fill=text_color(color), font=font)
    return np.asarray(canvas)
