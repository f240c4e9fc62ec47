"""Command line: `python -m emotion predict | evaluate | export | calibrate | read-out`. Thin: parse, call the
package, print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # less of TensorFlow's C++ chatter on stderr (its lines from
# before absl logging starts, oneDNN and CUDA notes, remain: TensorFlow 2.21 prints them whatever this says)

from emotion.errors import EmotionError  # noqa: E402
from emotion.images import IMAGE_EXTENSIONS, is_image_path  # noqa: E402
from emotion.photos import FACE_MODES  # noqa: E402
from emotion.predictor import verdict  # noqa: E402


FACES_HELP = ("auto: detect the faces of photos, take images of at most 160 px for face crops; "
              "crop: always detect; none: the whole image is one face")
MODEL_HELP = "a bundled model (happy_sad, the default, or emotions) or a .keras file (or its .tflite or .json)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emotion", description="Happy/Sad facial expressions.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify every face of images or folders of images")
    predict.add_argument("paths", nargs="+", type=Path, help="image files or folders (searched recursively)")
    predict.add_argument("--model", help=MODEL_HELP)
    predict.add_argument("--faces", choices=FACE_MODES, default="auto", help=FACES_HELP)
    predict.add_argument("--json", action="store_true", help="one JSON object per line per image")

    evaluate = commands.add_parser("evaluate", help="metrics of a model on a labelled dataset")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder or .zip of class folders")
    evaluate.add_argument("--model", help=MODEL_HELP)
    evaluate.add_argument("--faces", choices=FACE_MODES, default="auto", help=FACES_HELP)

    export = commands.add_parser("export", help="export a model to TFLite and check it against Keras")
    export.add_argument("--model", help=MODEL_HELP)
    export.add_argument("--output", type=Path, help="the .tflite file (default: beside the model)")

    calibrate = commands.add_parser("calibrate", help="fit a model's confidence calibration on a labelled dataset")
    calibrate.add_argument("--data", type=Path, required=True, help="dataset folder or .zip (its val/ split is used)")
    calibrate.add_argument("--model", help=MODEL_HELP)

    read_out = commands.add_parser("read-out", help="a model with a trained model's classes merged into fewer; "
                                                    "no training")
    read_out.add_argument("--model", required=True, help=MODEL_HELP)
    read_out.add_argument("--class", dest="classes", action="append", required=True, metavar="NEW=OLD:SHARE,...",
                          help="a new class and its shares of the model's classes, e.g. happy=happy:1,neutral:0.5 "
                               "(repeat for each new class)")
    read_out.add_argument("--output", type=Path, required=True, help="the new .keras file")
    read_out.add_argument("--data", type=Path, help="a dataset of the new classes to calibrate on (its val/ split)")

    args = parser.parse_args(argv)
    try:
        return {"predict": run_predict, "evaluate": run_evaluate, "export": run_export,
                "calibrate": run_calibrate, "read-out": run_read_out}[args.command](args)
    except EmotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def run_predict(args: argparse.Namespace) -> int:
    from emotion.predictor import Predictor

    predictor = Predictor.load(args.model)
    paths, empty_folders = expand_paths(args.paths)
    for folder in empty_folders:
        print(f"error: {folder}: no images in this folder or below it ({', '.join(IMAGE_EXTENSIONS)}).",
              file=sys.stderr)
    failures = len(empty_folders)
    for record in predictor.predict_sources(paths, faces=args.faces):
        failures += record["error"] is not None
        print(json.dumps(record) if args.json else describe(record), flush=True)
    return 1 if failures else 0


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files as given (even odd ones, so they are reported); folders searched for images, HEIC photos
    included so that each is reported too. Also the folders that hold no image at all."""
    expanded, empty = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_path(p, unreadable_photos=True))
            expanded.extend(found)
            empty += [] if found else [path]
        else:
            expanded.append(path)
    return expanded, empty


def describe(record: dict) -> str:
    if record["error"]:
        return f"{record['path']}: error: {record['error']}"
    if not record["faces"]:
        return f"{record['path']}: no face found (try --faces none if the image is a face crop)"
    faces = [f"{verdict(face['label'], face['confidence'], face.get('uncertain', False))} at {face['box']}"
             for face in record["faces"]]
    noun = "face" if len(faces) == 1 else "faces"
    return f"{record['path']}: {len(faces)} {noun}: " + "; ".join(faces)


def run_evaluate(args: argparse.Namespace) -> int:
    from emotion.evaluation import evaluate_dataset

    report = evaluate_dataset(args.data, args.model, faces=args.faces)
    print(f"model: {report.model_path}\ndata:  {args.data} ({report.split}, faces: {report.face_mode})")
    if report.skipped or report.no_face:
        print(f"skipped {report.skipped} unreadable file(s) and {report.no_face} photo(s) with no face found")
    print()
    print(report.evaluation.format_table())
    low, high = report.evaluation.accuracy_interval()
    print(f"\naccuracy {report.evaluation.accuracy:.1%} (95% interval {low:.1%} to {high:.1%}, "
          f"{report.evaluation.total} faces); expected calibration error {report.calibration_error:.1%}; "
          f"marked uncertain: {report.uncertain:.1%}")
    if report.votes is not None:
        print(f"\nagainst the crowd-vote majority ({report.votes.total} faces with a clear one):")
        print(report.votes.format_table())
    for name, other in report.other_classes.items():
        print(f"\n{name}/ (a class the model lacks): {other['faces']} faces, {other['confident']:.1%} given a label "
              f"with at least 80% confidence, mean confidence {other['mean_confidence']:.1%}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from emotion.modelfile import resolve_model_path
    from emotion.training import recalibrate

    fitted = recalibrate(resolve_model_path(args.model), args.data)
    print(f"temperature {fitted['temperature']:.2f}, uncertain below {fitted['uncertain_below']:.0%} "
          f"(fitted on {fitted['fitted_on']}); expected calibration error on validation "
          f"{fitted['ece_before']:.1%} uncalibrated, {fitted['ece_after']:.1%} calibrated.\n"
          f"Run `python -m emotion export --model {args.model or 'happy_sad'}` to update the TFLite file.")
    return 0


def run_read_out(args: argparse.Namespace) -> int:
    from emotion.transfer import save_read_out

    try:
        shares = {new.strip(): {old.strip(): float(share)
                                for old, share in (part.split(":") for part in parts.split(","))}
                  for new, parts in (spec.split("=", 1) for spec in args.classes)}
    except ValueError:
        print("error: write each --class as NEW=OLD:SHARE,OLD:SHARE, e.g. happy=happy:1,neutral:0.5", file=sys.stderr)
        return 2
    path = save_read_out(args.model, shares, args.output)
    print(f"wrote {path}: {', '.join(shares)} read out of {args.model}")
    if args.data:
        return run_calibrate(argparse.Namespace(model=str(path), data=args.data))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from emotion.export import export_record, export_tflite
    from emotion.modelfile import load_bundle

    path = export_tflite(load_bundle(args.model), args.output)
    record = export_record(path)  # written for every model read from a file, as here
    checked = f"; largest difference from Keras: {record['largest_difference']:.1e}" if record else ""
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB){checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
