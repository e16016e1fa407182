"""python -m mrnet COMMAND ...  Bad input: exit status 2 and one line `error: ...` on stderr.

This module builds every parser; a command's own modules are imported only when that command runs, so
`--help` and `predict` never load the training stack. Nothing imports from here.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

from mrnet.core.config import DEFAULT_METHOD, DEFAULT_OPACITY, DEFAULT_PALETTE, DILATE_PX, PALETTES, PLANES, TASKS
from mrnet.core.errors import MRNetError
from mrnet.core.settings import settings
from mrnet.toolchain.options import RECIPES, TrainOptions


def load_weights(source: str, device: str = "cpu"):
    """A weights source -> Weights on `device`; a fallback notice goes to stderr."""
    from mrnet.core.hub import resolve
    resolved = resolve(source)
    if resolved.notice:
        print(f"notice: {resolved.notice}", file=sys.stderr)
    return resolved.weights.to(device)


def cmd_predict(a) -> int:
    from mrnet.inputs.load import load_exam
    exam = load_exam(a.inputs)  # a file we cannot read is said before torch is imported (a few seconds)
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.explain import method
    from mrnet.core.export import export
    from mrnet.core.render import Renderer
    compute = compute_for(a.device, a.precision)
    method(a.method)  # an unknown method: one sentence, before any work
    analysis = analyze(exam, load_weights(a.weights, compute.device), compute)
    for text in analysis.warnings:
        print(f"warning: {text}", file=sys.stderr)
    if a.out:
        n = export(Renderer(analysis), Path(a.out), method=a.method, opacity=a.opacity, progress=sys.stderr.isatty(),
                   palette=a.palette)
        print(f"wrote {n} overlays and report.json to {a.out}", file=sys.stderr)
    print(json.dumps(analysis.report(a.method), indent=2))
    return 0


def cmd_bench(a) -> int:
    from mrnet.core.compute import compute_for
    from mrnet.toolchain.bench import run_bench
    print(json.dumps(run_bench(load_weights(a.weights), a.slices, a.repeats, compute_for(a.device)), indent=2))
    return 0


def cmd_phantom(a) -> int:
    from mrnet.phantom import write_dataset
    print(json.dumps(write_dataset(a.out, a.n_train, a.n_valid, a.seed, progress=False, workers=a.workers)))
    return 0


def cmd_train(a) -> int:
    from mrnet.toolchain.train import run_train
    a.plane_slice_steps = dict(a.plane_slice_steps)
    options = TrainOptions(**{f.name: getattr(a, f.name) for f in fields(TrainOptions)})
    if a.recipe:  # the recipe's values, except for options given on the command line
        given = {dest for dest, names in a.option_names.items()
                 if any(token == n or token.startswith(n + "=") for token in a.argv for n in names)}
        options = replace(options, **{k: v for k, v in RECIPES[a.recipe].items() if k not in given})
    print(json.dumps(run_train(options), indent=2))
    return 0


def cmd_evaluate(a) -> int:
    from mrnet.toolchain.evaluate import read_compared, record, run_evaluate
    if a.compare and not a.record:
        raise MRNetError("--compare goes with --record (it adds a side-by-side table to the card).")
    compared = read_compared(a.compare)  # before the long run: a bad file fails at once
    from mrnet.toolchain.evaluate import read_marks
    marks = read_marks(a.marks, a.split, a.marks_dataset) if a.marks else None  # before the long run, too
    weights = load_weights(a.weights)
    report = run_evaluate(a.data, weights, a.split, progress=sys.stderr.isatty(), dilate_px=a.dilation,
                          randomization_exams=a.randomization_exams, marks=marks)
    if a.record:
        record(weights, report, a.data, a.data_note, compared)
    print(json.dumps(report, indent=2))
    return 0


def cmd_ood_stats(a) -> int:
    from mrnet.toolchain.ood_fit import record_statistics
    print(json.dumps(record_statistics(load_weights(a.weights), a.data, a.split, progress=sys.stderr.isatty()), indent=2))
    return 0


def cmd_convert(a) -> int:
    from mrnet.toolchain.convert import run_convert
    try:
        fusion = json.loads(a.fusion) if a.fusion else None
    except json.JSONDecodeError as exc:
        raise MRNetError(f"--fusion is not valid JSON ({exc}).") from None
    config = run_convert(a.sources, a.out, a.task, a.plane, a.format, fusion)
    print(json.dumps({"out": str(a.out), "tasks": config.tasks, "planes": config.planes,
                      "files": [m.file for m in config.models]}, indent=2))
    return 0


def cmd_publish(a) -> int:
    from mrnet.toolchain.publish import run_publish
    print(json.dumps(run_publish(a.folder, a.repo, a.revision, a.private, a.dry_run), indent=2))
    return 0


def cmd_space(a) -> int:
    from mrnet.toolchain.space import run_space
    print(json.dumps(run_space(a.repo, a.private, a.dry_run), indent=2))
    return 0


def cmd_figure(a) -> int:
    from mrnet.toolchain.figures import deletion_figure, make_figure, randomization_figure
    draw = {"phantoms": make_figure, "deletion": deletion_figure, "randomization": randomization_figure}[a.kind]
    print(draw(load_weights(a.weights), a.out))
    return 0


def open_cases(source: str, split: str):
    """DATA of `score`: `phantom` (the app's default set), a folder in MRNet's layout or a Hub dataset repo."""
    if source == "phantom":
        from mrnet.sets.phantom_set import phantom_cases
        return phantom_cases()
    from mrnet.sets.cases import open_source
    return open_source(source, split)


def cmd_score(a) -> int:
    from mrnet.core.compute import compute_for
    from mrnet.toolchain.score import score
    cases = open_cases(a.data, a.split)
    compute = compute_for(a.device, a.precision)
    summary = score(cases, load_weights(a.weights, compute.device), compute, Path(a.out), progress=not a.no_progress)
    for problem in summary["problems"]:
        print(f"warning: {problem}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_flags(a) -> int:
    text, count = flag_store(a.db).csv()
    if a.out == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(a.out).write_text(text)
    except OSError as exc:
        raise MRNetError(f"{a.out} cannot be written ({exc.strerror}).") from None
    print(f"wrote {count} flags to {a.out}", file=sys.stderr)
    return 0


def flag_store(db: str):
    """The app's flags database, which must exist: a CLI never makes an empty one by mistake."""
    from mrnet.sets.flags import FlagStore
    if not Path(db).is_file():
        raise MRNetError(f"There is no flag database at {db}; give the app's MRNET_FLAGS with --db.")
    return FlagStore(db)


def flags_db_arg(p) -> None:
    p.add_argument("--db", default=settings().flags, help="the SQLite database; default: $MRNET_FLAGS, else data/flags.sqlite")


def cmd_flags_summary(a) -> int:
    from mrnet.sets.flags import agreement_sentence, inert, skipped_sentence
    store = flag_store(a.db)
    rows, skipped = store.summary()
    if skipped:
        print(f"warning: {skipped_sentence(skipped)}", file=sys.stderr)
    if a.json:  # each row with its reviewers' agreement (counts per reviewer, Cohen's and Fleiss' kappa)
        agreement = {(r["weights"], r["task"], r["method"]): r for r in store.agreement()}
        for row in rows:
            found = agreement.get((row["weights"], row["task"], row["method"]), {})
            row["between_reviewers"] = {k: found.get(k) for k in ("reviewers", "pairs", "fleiss")}
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'weights':18} {'task':10} {'method':10} {'n':>5} {'on':>5} {'off':>5} {'unsure':>6} "
          f"{'share on':>8}  95% interval (Wilson)  {'pointing game agrees':>20}  95% interval (Wilson)")
    for r in rows:
        agree = (f"{r['agree']:>9d} of {r['pointing_n']:<3d} {r['agreement']:.2f}  [{r['agreement_low']:.2f}, "
                 f"{r['agreement_high']:.2f}]" if r["pointing_n"] else f"{'-':>20}")
        print(f"{inert(r['weights'])[:18]:18} {inert(r['task']):10} {inert(r['method']):10} {r['n']:5d} {r['on']:5d} {r['off']:5d} "
              f"{r['unsure']:6d} {r['share_on']:8.2f}  [{r['share_on_low']:.2f}, {r['share_on_high']:.2f}]"
              f"{'':>12}{agree}")
    for r in store.agreement():
        if len(r["reviewers"]) < 2:
            continue
        print(f"\nagreement, {inert(r['weights'])[:18]} {inert(r['task'])} {inert(r['method'])}:")
        for name, c in r["reviewers"].items():
            print(f"  {inert(name)[:40]:40} on {c['on']:4d}  off {c['off']:4d}  unsure {c['unsure']:4d}")
        for p in r["pairs"]:
            print(f"  Cohen's kappa, {inert(p['a'])[:30]} & {inert(p['b'])[:30]}: {agreement_sentence(p)}")
        print(f"  Fleiss' kappa, all {r['fleiss']['reviewers']} reviewers: {agreement_sentence(r['fleiss'])}")
    if not rows:
        print("(no flags yet)")
    else:
        print("pointing game: on a set with lesion masks, whether the judged map's maximum lies within 15 px of "
              "the lesion on that slice; it agrees with an 'on' verdict that hits and an 'off' verdict that misses.")
    print_marks(store.marks())
    return 0


def print_marks(marks: list[dict]) -> None:
    from mrnet.sets.flags import inert
    if not marks:
        return
    print(f"\nthe pointing game against reviewers' marks (the judged map's maximum within {DILATE_PX} px of the mark):")
    print(f"{'weights':18} {'method':10} {'plane':9} {'marks':>5} {'on the mark':>11}  95% interval (Wilson)  "
          "marks on the lesion (sets with masks)")
    for r in marks:
        print(f"{inert(r['weights'])[:18]:18} {inert(r['method'])[:10]:10} {inert(r['plane'])[:9]:9} {r['n']:5d} "
              f"{r['share']:11.2f}  [{r['low']:.2f}, {r['high']:.2f}]{'':>10}"
              + (f"{r['on_lesion']} of {r['with_mask']}" if r["with_mask"] else "-"))


def cmd_flags_marks(a) -> int:
    marks = flag_store(a.db).marks()
    if a.json:
        print(json.dumps(marks, indent=2))
    elif marks:
        print_marks(marks)
    else:
        print("(no lesion marks yet)")
    return 0


def cmd_users_add(a) -> int:
    import getpass

    from mrnet.app.access import add_user
    first = getpass.getpass(f"password for {a.name}: ")
    if getpass.getpass("again: ") != first:
        raise MRNetError("The two passwords differ; nothing was written.")
    Path(a.file).parent.mkdir(parents=True, exist_ok=True)
    new = add_user(Path(a.file), a.name, first)
    print(f"{'added' if new else 'new password for'} {a.name} in {a.file}", file=sys.stderr)
    return 0


def cmd_readme_metrics(a) -> int:
    from mrnet.toolchain.card import with_readme_metrics
    evaluation = json.loads((Path(a.weights) / "config.json").read_text())["provenance"].get("evaluation", {})
    readme = Path(a.readme)
    readme.write_text(with_readme_metrics(readme.read_text(), evaluation))
    print(f"wrote the metrics table of {a.readme} from {a.weights}/config.json", file=sys.stderr)
    return 0


def cmd_compare(a) -> int:
    from mrnet.toolchain.compare import compare_tables, format_report, strict
    report = compare_tables(Path(a.a), Path(a.b), a.threshold)
    print(json.dumps(strict(report), indent=2, allow_nan=False) if a.json else format_report(report))
    return 0


def weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=settings().weights,
                   help="weights folder, or Hub repo owner/name[@revision]; default: $MRNET_WEIGHTS, else bundled weights/")


def plane_steps(text: str) -> tuple[str, int]:
    """`PLANE=N` of --plane-slice-steps."""
    plane, _, steps = text.partition("=")
    if plane not in PLANES or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not PLANE=STEPS with PLANE one of {', '.join(PLANES)}")
    return plane, int(steps)


def device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")


def precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="autocast precision of the convolutions; auto: bf16 where native (CUDA or a bf16 CPU), else fp32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mrnet", allow_abbrev=False, description="MRNet knee-MRI predictions explained with "
                                     "CAM. Research demo, not for diagnosis.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", allow_abbrev=False, help="analyse one exam; print the JSON report")
    p.add_argument("inputs", nargs="+", help="per-plane .npy (axial.npy, sagittal/0003.npy, ...), .npz, .zip or DICOM files")
    weights_arg(p)
    p.add_argument("--out", help="also write every overlay as DIR/TASK/PLANE/NNN.png and DIR/report.json")
    p.add_argument("--method", default=DEFAULT_METHOD, help="CAM method of the overlays: a name in "
                   "mrnet.core.explain.METHODS (shapley, exact, classic, ...); checked when the overlays are drawn")
    p.add_argument("--opacity", type=float, default=DEFAULT_OPACITY)
    p.add_argument("--palette", choices=PALETTES, default=DEFAULT_PALETTE, help="the overlays' colours: jet, or "
                   "viridis (perceptually uniform, readable with red-green colour blindness)")
    device_arg(p)
    precision_arg(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("score", allow_abbrev=False, help="predict every case of a labelled set (no CAMs drawn): a score table for the "
                       "app's Cases view, with AUC per task; reruns score only new or changed cases")
    p.add_argument("data", help="`phantom` (the app's default set), a folder in MRNet's layout, or a Hub dataset "
                   "repo owner/name[@revision]")
    p.add_argument("--split", default="valid")
    weights_arg(p)
    p.add_argument("--out", required=True, help="the score table (CSV); its cache is OUT.cache.jsonl")
    device_arg(p)
    precision_arg(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=cmd_score)

    p = sub.add_parser("flags", allow_abbrev=False, help="reviewer flags kept by the app")
    flags = p.add_subparsers(dest="action", required=True)
    e = flags.add_parser("export", allow_abbrev=False, help="write every flag as CSV")
    e.add_argument("--out", required=True, help="CSV file, or - for standard output")
    flags_db_arg(e)
    e.set_defaults(run=cmd_flags)
    e = flags.add_parser("summary", allow_abbrev=False, help="per weights, task and method: how many flags, the "
                         "share judged on the lesion with its Wilson 95%% interval, and how often the verdicts agree "
                         "with the pointing game (sets with lesion masks)")
    flags_db_arg(e)
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=cmd_flags_summary)
    e = flags.add_parser("marks", allow_abbrev=False, help="per weights, method and plane: the pointing game against "
                         "reviewers' lesion marks with its Wilson 95%% interval, and (sets with masks) how many marks "
                         "touch the lesion")
    flags_db_arg(e)
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=cmd_flags_marks)

    p = sub.add_parser("compare", allow_abbrev=False, help="two score tables of the same labelled set (two weights): "
                       "AUCs with DeLong's test, McNemar's exact test, disagreements, ECE and Brier per task")
    p.add_argument("a", help="score table A (CSV from `python -m mrnet score`)")
    p.add_argument("b", help="score table B, of the same set")
    p.add_argument("--threshold", type=float, default=0.5, help="positive when p >= threshold (McNemar, disagreements)")
    p.add_argument("--json", action="store_true", help="JSON instead of the table")
    p.set_defaults(run=cmd_compare)

    p = sub.add_parser("bench", allow_abbrev=False, help="time the analysis and the PNG export against the blog code's path")
    weights_arg(p)
    p.add_argument("--slices", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    device_arg(p)
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("phantom", allow_abbrev=False, help="write synthetic knee phantoms in MRNet's folder layout")
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-valid", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes (the output is the same for any number)")
    p.set_defaults(run=cmd_phantom)

    d = TrainOptions("", "")  # the defaults live in the dataclass
    p = sub.add_parser("train", allow_abbrev=False, help="train one multi-task MRNet per plane on MRNet's folder layout")
    p.add_argument("--data", required=True, help="folder in MRNet's layout (train/, valid/, *-TASK.csv)")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--patience", type=int, default=d.patience,
                   help="early stopping: epochs without a better validation AUC")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=d.optimizer)
    p.add_argument("--mask-weight", type=float, default=d.mask_weight,
                   help="weight of the lesion-mask loss on the CAM where DATA/masks exists (phantoms); 0: no "
                        "per-location loss, stage 1 learns from slice-level labels (add --slice-steps 0 for plain MRNet)")
    p.add_argument("--mask-pos-weight", type=float, default=d.mask_pos_weight)
    p.add_argument("--slice-steps", type=int, default=d.slice_steps, help="stage 1 steps (phantoms with masks only)")
    p.add_argument("--plane-slice-steps", nargs="+", type=plane_steps, default=[], metavar="PLANE=N",
                   help="stage 1 steps for these planes instead of --slice-steps (e.g. coronal=4000)")
    p.add_argument("--slice-batch", type=int, default=d.slice_batch, help="stage 1: slices per step")
    p.add_argument("--subset-slices", type=int, default=d.subset_slices, help="stage 1: slices per subset (a small exam)")
    p.add_argument("--stage1", choices=["slices", "subsets"], default=d.stage1,
                   help="stage 1 on single slices (head on each slice's pooled features) or on slice subsets "
                        "(MRNet's max over the subset)")
    p.add_argument("--hard-negatives", type=int, default=d.hard_negatives,
                   help="stage 1 (slices): train on the clean slices the model scores highest, the top 1 in N of N "
                        "times as many random ones (the max over an exam's slices meets exactly those); 1: random")
    p.add_argument("--stage1-positive-head", action="store_true",
                   help="stage 1: the head's weights kept > 0 (softplus), so that each channel counts only as lesion "
                        "evidence, as MRNet's max over slices reads it; experimental, see docs/training.md")
    p.add_argument("--refit-head", type=float, default=d.refit_head, metavar="L2",
                   help="after stage 1, fit the head again on the training exams' max-pooled features (what it reads "
                        "in MRNet) by logistic regression with this L2 penalty on standardised channels (weights >= 0 "
                        "with --stage1-positive-head); 0: no")
    p.add_argument("--stage1-lr", type=float, default=d.stage1_lr, help="stage 1 learning rate, cosine-annealed to 5%%")
    p.add_argument("--stage1-batchnorm", action=argparse.BooleanOptionalAction, default=d.stage1_batchnorm,
                   help="stage 1 with BatchNorm after each conv, folded into the convs afterwards")
    p.add_argument("--stage2-lr-factor", type=float, default=d.stage2_lr_factor,
                   help="exam-level stage: lr multiplied by this")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--tasks", nargs="+", default=d.tasks)
    p.add_argument("--planes", nargs="+", default=d.planes)
    device_arg(p)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--trained-on", default=d.trained_on, help="provenance text for the model card")
    p.add_argument("--record-command", default=d.record_command, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--init", default=d.init, help="where the convs start: scratch (He init), imagenet (torchvision's "
                   "ImageNet AlexNet, downloaded once into the torch hub cache) or a .safetensors/.pth file")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="a preset of the options above (stanford: MRNet as "
                   "published, see mrnet/toolchain/options.py); options given on the command line win")
    p.add_argument("--augment", choices=["ours", "stanford"], default=d.augment)
    p.add_argument("--plateau-patience", type=int, default=d.plateau_patience,
                   help="> 0: lr x --plateau-factor after this many epochs without a lower validation loss")
    p.add_argument("--plateau-factor", type=float, default=d.plateau_factor)
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader processes reading and augmenting exams")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoints are in OUT/checkpoints")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="stage 1: save its state (for --resume) and log its mean loss every N steps")
    p.set_defaults(run=cmd_train, option_names={x.dest: x.option_strings for x in p._actions})

    p = sub.add_parser("evaluate", allow_abbrev=False, help="AUC, pointing game, deletion and model-randomization checks and a "
                       "histogram baseline on MRNet's folder layout (the keys: mrnet/toolchain/evaluate.py)")
    p.add_argument("--data", required=True)
    weights_arg(p)
    p.add_argument("--split", default="valid")
    p.add_argument("--dilation", type=int, default=DILATE_PX, help="pointing game tolerance in pixels")
    p.add_argument("--randomization-exams", type=int, default=20,
                   help="exams for the model-randomization check (0: skip it)")
    p.add_argument("--record", action="store_true",
                   help="also write the result and this command into the (local) weights folder's config and card")
    p.add_argument("--data-note", default="", help="with --record: how the evaluation data was made")
    p.add_argument("--marks", metavar="FLAGS_DB", help="the app's flags database: add the pointing game against "
                   "reviewers' lesion marks (pointing_game_marks), on any set, masks or not")
    p.add_argument("--marks-dataset", metavar="NAME", help="with --marks: only the marks of this labelled set "
                   "(as the app names it); default: every mark of the split")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=REPORT.json",
                   help="with --record: another evaluate report (e.g. another recipe's weights on the same exams) "
                        "shown beside this one in the card; repeatable")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("ood-stats", allow_abbrev=False,
                       help="fit the out-of-distribution statistics of a weights folder on its training data")
    p.add_argument("--data", required=True, help="folder in MRNet's layout")
    p.add_argument("--split", default="train")
    weights_arg(p)
    p.set_defaults(run=cmd_ood_stats)

    p = sub.add_parser("convert", allow_abbrev=False, help="blog-code or Stanford-style MRNet checkpoints -> a weights folder")
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--task", choices=TASKS)
    p.add_argument("--plane", choices=PLANES)
    p.add_argument("--format", choices=["auto", "blog", "stanford"], default="auto")
    p.add_argument("--fusion", help='JSON: {"acl": {"intercept": b, "coef": {"sagittal": w, ...}}, ...}')
    p.set_defaults(run=cmd_convert)

    p = sub.add_parser("publish", allow_abbrev=False, help="validate a weights folder and upload it to the Hugging Face Hub")
    p.add_argument("folder", type=Path)
    p.add_argument("--repo", required=True, help="owner/name")
    p.add_argument("--revision", help="branch to upload to (created if missing)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="validate and list the files; upload nothing")
    p.set_defaults(run=cmd_publish)

    p = sub.add_parser("users", allow_abbrev=False, help="named reviewers for MRNET_USERS")
    users = p.add_subparsers(dest="action", required=True)
    e = users.add_parser("add", allow_abbrev=False, help="add a reviewer (or set a new password): asked twice")
    e.add_argument("name")
    e.add_argument("--file", default=settings().users or "data/users.txt",
                   help="default: $MRNET_USERS, else data/users.txt")
    e.set_defaults(run=cmd_users_add)

    p = sub.add_parser("readme-metrics", allow_abbrev=False,
                       help="rewrite the README's metrics table from the bundled weights' card (weights/config.json)")
    p.add_argument("--readme", default="README.md")
    p.add_argument("--weights", default="weights")
    p.set_defaults(run=cmd_readme_metrics)

    p = sub.add_parser("space", allow_abbrev=False, help="create a Gradio Space and upload the files the app runs on")
    p.add_argument("--repo", required=True, help="owner/name of the Space")
    p.add_argument("--private", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="list the files and their sizes; create and upload nothing")
    p.set_defaults(run=cmd_space)

    p = sub.add_parser("figure", allow_abbrev=False, help="the README figures: phantoms (real vs phantom slices, a lesion mask and its "
                       "CAMs), deletion (the recorded evaluation's deletion curves), randomization (a CAM strip)")
    p.add_argument("--out", required=True)
    p.add_argument("--kind", choices=["phantoms", "deletion", "randomization"], default="phantoms")
    weights_arg(p)
    p.set_defaults(run=cmd_figure)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # which options were given (train --recipe)
    try:
        return args.run(args)
    except MRNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
