"""python -m mrnet COMMAND ...  Bad input: exit status 2 and one line `error: ...` on stderr."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import MRNetError


def source_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=os.environ.get("MRNET_WEIGHTS", ""),
                   help="weights folder, or Hub repo owner/name[@revision]; default: $MRNET_WEIGHTS, else bundled weights/")


def load(source: str):
    from .hub import resolve
    resolved = resolve(source)
    if resolved.notice:
        print(f"notice: {resolved.notice}", file=sys.stderr)
    return resolved.weights


def cmd_predict(args) -> int:
    from .analysis import analyze
    from .export import export
    from .inputs import load_exam
    exam = load_exam(args.inputs)
    weights = load(args.weights)
    analysis = analyze(exam, weights, precision=args.precision)
    if args.out:
        n = export(analysis, Path(args.out), method=args.method, opacity=args.opacity, progress=sys.stderr.isatty())
        print(f"wrote {n} overlays and report.json to {args.out}", file=sys.stderr)
    print(json.dumps(analysis.report(args.method), indent=2))
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench
    print(json.dumps(run_bench(weights=load(args.weights), slices=args.slices, repeats=args.repeats), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrnet", description="MRNet knee-MRI predictions explained with CAM. "
                                     "Research demo, not for diagnosis.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="analyse one exam; print the JSON report")
    p.add_argument("inputs", nargs="+", help="per-plane .npy (axial.npy, sagittal/0003.npy, ...), .npz, .zip or DICOM files")
    source_arg(p)
    p.add_argument("--out", help="also write every overlay as DIR/TASK/PLANE/NNN.png and DIR/report.json")
    p.add_argument("--method", choices=["exact", "classic"], default="exact", help="CAM method of the overlays")
    p.add_argument("--opacity", type=float, default=0.4)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("bench", help="time the analysis and the PNG export against the blog code's path")
    source_arg(p)
    p.add_argument("--slices", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(run=cmd_bench)

    from . import convert, evaluate, figures, phantom, publish, train  # each adds its own sub-command
    for module in (phantom, train, evaluate, convert, publish, figures):
        module.add_cli(sub)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except MRNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
