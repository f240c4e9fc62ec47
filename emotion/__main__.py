"""Command line: `python -m emotion predict | evaluate | export`. Thin: parse, call the package, print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output

from emotion.config import FACE_MODES  # noqa: E402
from emotion.errors import EmotionError  # noqa: E402
from emotion.images import is_image_path  # noqa: E402
from emotion.predictor import PREDICT_FACE_MODES  # noqa: E402


MODEL_HELP = "a bundled model (happy_sad, the default, or emotions) or a .keras file"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emotion", description="Happy/Sad facial expressions.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify every face of images or folders of images")
    predict.add_argument("paths", nargs="+", type=Path, help="image files or folders (searched recursively)")
    predict.add_argument("--model", help=MODEL_HELP)
    predict.add_argument("--faces", choices=PREDICT_FACE_MODES, default="auto",
                         help="auto: detect every face; none: the whole image is one face")
    predict.add_argument("--json", action="store_true", help="one JSON object per line per image")

    evaluate = commands.add_parser("evaluate", help="metrics of a model on a labelled dataset")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder or .zip of class folders")
    evaluate.add_argument("--model", help=MODEL_HELP)
    evaluate.add_argument("--faces", choices=FACE_MODES, default="auto")

    export = commands.add_parser("export", help="export a model to TFLite and check it against Keras")
    export.add_argument("--model", help=MODEL_HELP)
    export.add_argument("--output", type=Path, help="the .tflite file (default: beside the model)")

    args = parser.parse_args(argv)
    try:
        return {"predict": run_predict, "evaluate": run_evaluate, "export": run_export}[args.command](args)
    except EmotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def run_predict(args: argparse.Namespace) -> int:
    from emotion.predictor import Predictor

    predictor = Predictor.load(args.model)
    failures = 0
    for path in expand_paths(args.paths):
        record = predictor.predict_source(path, faces=args.faces)
        failures += record["error"] is not None
        print(json.dumps(record) if args.json else describe(record), flush=True)
    return 1 if failures else 0


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given (even odd ones, so they are reported); folders searched for images."""
    expanded = []
    for path in paths:
        if path.is_dir():
            expanded.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_path(p)))
        else:
            expanded.append(path)
    return expanded


def describe(record: dict) -> str:
    if record["error"]:
        return f"{record['path']}: error: {record['error']}"
    if not record["faces"]:
        return f"{record['path']}: no face found (try --faces none if the image is a face crop)"
    faces = [f"{verdict(face)} at {face['box']}" for face in record["faces"]]
    noun = "face" if len(faces) == 1 else "faces"
    return f"{record['path']}: {len(faces)} {noun}: " + "; ".join(faces)


def verdict(face: dict) -> str:
    """`happy 93%`, or `unsure (leans happy, 58%)` for a face below the model's confidence threshold."""
    if face.get("uncertain"):
        return f"unsure (leans {face['label']}, {face['confidence']:.0%})"
    return f"{face['label']} {face['confidence']:.0%}"


def run_evaluate(args: argparse.Namespace) -> int:
    from emotion.evaluation import evaluate_dataset

    report = evaluate_dataset(args.data, args.model, faces=args.faces)
    print(f"model: {report.model_path}\ndata:  {args.data} ({report.split}, faces: {report.face_mode})")
    if report.skipped or report.no_face:
        print(f"skipped {report.skipped} unreadable file(s) and {report.no_face} photo(s) with no face found")
    print()
    print(report.evaluation.format_table())
    return 0


def run_export(args: argparse.Namespace) -> int:
    from emotion.export import check_parity, export_tflite
    from emotion.modelfile import load_bundle

    bundle = load_bundle(args.model)
    path = export_tflite(bundle, args.output)
    difference = check_parity(bundle, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); largest difference from Keras: {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
