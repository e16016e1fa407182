"""`python -m mrnet train --data DIR --out DIR`: one multi-task MRNet per plane, trained on MRNet's
folder layout (real MRNet data or our phantoms), class-balanced BCE, torchvision v2 augmentation,
early stopping on validation AUC, logistic-regression fusion fitted on validation logits, and a
complete weights folder at the end. A checkpoint per plane and epoch is kept in OUT/checkpoints (our own
files, loaded with weights_only=True) with the random generators' states: `--resume` after a kill continues
as the uninterrupted run would have. Exams are read and augmented by `--workers` DataLoader processes;
every line of the log also goes to OUT/train.log, with each epoch's time and exams/s."""
from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from tqdm import tqdm

from mrnet.core.compute import Compute, compute_for
from mrnet.core.config import TASK_BITS, ModelEntry, Normalization, WeightsConfig
from mrnet.core.errors import MRNetError
from mrnet.core.model import MRNet
from mrnet.core.weights import save_weights
from mrnet.sets.metrics import auc
from mrnet.toolchain.card import write_card
from mrnet.toolchain.dataset import Split, fit_logistic, read_split
from mrnet.toolchain.ood_fit import fit_statistics
from mrnet.toolchain.options import TrainOptions
from mrnet.toolchain.pretrained import initial_model


def augmenter(kind: str = "ours") -> v2.Compose:
    # The same random transform for every slice of an exam (the slices are the channels).
    if kind == "stanford":  # the blog code's RandomRotate(25), RandomTranslate(0.11 of 227 px: 25 px), RandomFlip
        return v2.Compose([v2.RandomAffine(degrees=25, translate=(25 / 256, 25 / 256)), v2.RandomHorizontalFlip()])
    return v2.Compose([v2.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.92, 1.08)),
                       v2.RandomHorizontalFlip()])


class TrainingExams(torch.utils.data.Dataset):
    """One plane's training exams, read and augmented where the DataLoader runs (a worker process, or the main
    one); the lesion masks get the same random transform as their slices."""

    def __init__(self, split: Split, plane: str, use_masks: bool, augment: str):
        self.split, self.plane, self.use_masks, self.aug = split, plane, use_masks, augmenter(augment)

    def __len__(self) -> int:
        return len(self.split.ids)

    def __getitem__(self, i: int):
        vol = torch.from_numpy(self.split.volume(self.plane, i))
        if not self.use_masks:
            return i, self.aug(vol), torch.empty(0)
        vol, mask = self.aug(vol, tv_tensors.Mask(torch.from_numpy(self.split.mask(self.plane, i))))
        return i, vol, mask.as_subclass(torch.Tensor)


def cam_logits(model: MRNet, features: torch.Tensor) -> torch.Tensor:
    """(S, C, h, w) -> (S, tasks, h, w): the head applied at every location, i.e. the CAM in logit units."""
    return torch.einsum("tc,schw->sthw", model.classifier.weight, features) + model.classifier.bias[None, :, None, None]


def task_bit_tensor(tasks) -> torch.Tensor:
    """Each task's bits in the phantom lesion masks (abnormal: any lesion)."""
    return torch.tensor([TASK_BITS.get(t, 0) for t in tasks], dtype=torch.uint8)


def mask_targets(mask: torch.Tensor, task_bits: torch.Tensor, size) -> torch.Tensor:
    """uint8 bit-field masks (S, H, W) -> (S, tasks, h, w) float: 1 where any pixel of the cell is lesion."""
    per_task = ((mask[:, None] & task_bits[None, :, None, None]) > 0).float()
    return torch.nn.functional.adaptive_max_pool2d(per_task, size)


def with_batchnorm(features: torch.nn.Sequential) -> torch.nn.Sequential:
    """A training-time view of AlexNet's features with a BatchNorm after every conv (the convs are
    shared, not copied). From scratch and without normalisation layers AlexNet learns very slowly;
    `fold_batchnorm` turns the result back into plain AlexNet."""
    layers = []
    for module in features:
        layers.append(module)
        if isinstance(module, torch.nn.Conv2d):
            layers.append(torch.nn.BatchNorm2d(module.out_channels).to(module.weight.device))
    return torch.nn.Sequential(*layers)


@torch.no_grad()
def fold_batchnorm(bn_features: torch.nn.Sequential) -> None:
    """Fold each BatchNorm's running statistics and affine into the conv before it, in place: the plain
    convs then compute what conv + BatchNorm computed in eval mode."""
    layers = list(bn_features)
    for conv, bn in zip(layers, layers[1:]):
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale[:, None, None, None])
            conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)


def pick_subset(rng, mask: np.ndarray, k: int, want_lesion: bool) -> np.ndarray:
    """k slice indices of one exam: with at least one lesion slice, or (where possible) none."""
    n = len(mask)
    k = min(k, n)
    lesion = np.nonzero(mask.reshape(n, -1).any(axis=1))[0]
    if want_lesion and len(lesion):
        first = rng.choice(lesion)
        rest = rng.choice(np.setdiff1d(np.arange(n), [first]), k - 1, replace=False)
        return np.sort(np.r_[first, rest])
    clean = np.setdiff1d(np.arange(n), lesion)
    return np.sort(rng.choice(clean if len(clean) >= k else np.arange(n), k, replace=False))


@torch.no_grad()
def clean_scores(model: MRNet, vols, picks, norm, compute: Compute) -> np.ndarray:
    """Each picked (exam, slice)'s highest task logit, as the model in training scores it now (eval mode: the
    BatchNorm view uses its running statistics), for hard-negative mining."""
    model.eval()
    x = compute.slices(np.stack([vols[i][s] for i, s in picks]), norm)
    with compute.autocast():
        pooled, _ = model.forward_head(model.forward_features(x))
    logits = model.classifier(pooled)
    model.train()
    return logits.amax(dim=1).cpu().numpy()


class Softplus(torch.nn.Module):
    """w = softplus(v): a weight kept > 0 by its parametrisation (a clamp leaves a dead 0 whose channel no
    longer learns)."""

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(v)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.expm1(w.clamp(min=1e-4)))


@torch.no_grad()
def make_head_positive(model: MRNet, start: float = 0.05) -> None:
    """Stage 1's positive head: every weight starts at `start` > 0, so that each channel counts only as lesion
    evidence, which a clean slice's anatomy cannot cancel once MRNet's head reads the max over an exam's slices."""
    model.classifier.weight.fill_(start)
    torch.nn.utils.parametrize.register_parametrization(model.classifier, "weight", Softplus())


def make_optimizer(params, lr: float, args: TrainOptions) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=args.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=args.weight_decay)


def pretrain(model: MRNet, train: Split, plane, tasks, args: TrainOptions, norm, compute: Compute, log,
             ckpt: Path | None = None) -> None:
    """Stage 1 (phantoms only): training from the lesion masks. Each step draws groups of slices -
    `slices`: single slices, half of them holding a lesion; `subsets`: small slice subsets of one exam,
    half of them with a lesion slice - labels each group from its masks, and trains MRNet's own path
    (max over the group's slices, then the head) plus, unless mask_weight is 0, a per-location loss on
    the CAM. With mask_weight 0 the masks serve only as slice-level labels. From scratch,
    exam-level labels alone (one max over ~30 slices per label) left AlexNet at chance within a CPU
    budget; this shows it the lesions. With `--stage1-batchnorm` the convs train with BatchNorm, which
    is folded into them at the end, so the model stays plain AlexNet. With `ckpt`, the stage's state (model,
    optimiser, schedule, random generators) is saved there every `checkpoint_every` steps, and a run that finds
    it continues from its step as the uninterrupted run would have (a complete one is loaded and not trained again)."""
    rng = np.random.default_rng(args.seed + 1)
    vols = [train.volume(plane, i) for i in range(len(train.ids))]
    masks = [train.mask(plane, i) for i in range(len(train.ids))]
    task_bits = task_bit_tensor(tasks)
    if args.stage1 == "slices":
        pos = [(i, s) for i, m in enumerate(masks) for s in range(len(m)) if m[s].any()]
        neg = [(i, s) for i, m in enumerate(masks) for s in range(len(m)) if not m[s].any()]
        half = args.slice_batch // 2

        def draw():
            picks = [pos[j] for j in rng.integers(0, len(pos), half)]
            clean = [neg[j] for j in rng.integers(0, len(neg), half * args.hard_negatives)]
            if args.hard_negatives > 1:  # the clean slices the model scores highest: the max over slices sees them
                clean = [clean[j] for j in np.argsort(-clean_scores(model, vols, clean, norm, compute))[:half]]
            return [(i, np.array([s])) for i, s in picks + clean]
        log(f"{plane}: stage 1, {args.slice_steps} steps of {args.slice_batch} slices ({len(pos)} lesion slices, "
            f"{len(neg)} others" + (f"; the hardest 1 in {args.hard_negatives} clean slices" if args.hard_negatives > 1
                                    else "") + ")"
            + ("" if args.mask_weight > 0 else ", slice labels only (no per-location loss)"))
    else:
        groups = max(1, args.slice_batch // args.subset_slices)

        def draw():
            return [(i, pick_subset(rng, masks[i], args.subset_slices, want_lesion=rng.random() < 0.5))
                    for i in rng.integers(0, len(vols), groups)]
        log(f"{plane}: stage 1, {args.slice_steps} steps of {groups} subsets x {args.subset_slices} slices")
    plain = model.features
    if args.stage1_batchnorm:  # the model's own forward path runs through the BatchNorm view for this stage
        model.features = with_batchnorm(plain)
    if args.stage1_positive_head:
        make_head_positive(model)
        head = list(model.classifier.parameters())
        rest = [p for p in model.parameters() if all(p is not h for h in head)]
        opt = make_optimizer([{"params": rest}, {"params": head, "lr": args.stage1_lr * 10}], args.stage1_lr, args)
    else:
        opt = make_optimizer(model.parameters(), args.stage1_lr, args)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.slice_steps), eta_min=args.stage1_lr * 0.05)
    first = 0
    if ckpt is not None and ckpt.is_file():
        saved = torch.load(ckpt, weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        schedule.load_state_dict(json.loads(saved["schedule"]))
        rng.bit_generator.state = json.loads(saved["numpy_rng"])
        torch.set_rng_state(saved["torch_rng"])
        first = int(saved["step"])
        log(f"{plane}: stage 1 resuming after step {first}")
    bce = torch.nn.BCEWithLogitsLoss()
    dense_bce = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(args.mask_pos_weight, device=compute.device))
    aug = augmenter(args.augment)
    model.train()
    if args.stage1_positive_head and first == 0:  # all-positive weights sum every channel: start the logits at 0
        with torch.no_grad():
            x = compute.slices(np.concatenate([vols[i][idx] for i, idx in draw()]), norm)
            pooled, _ = model.forward_head(model.forward_features(x).float())
            model.classifier.bias.copy_(-(pooled @ model.classifier.weight.T).mean(dim=0))
    recent = []
    for step in range(first, args.slice_steps):
        xs, ms, sizes = [], [], []
        for i, idx in draw():
            v, m = aug(torch.from_numpy(vols[i][idx]), tv_tensors.Mask(torch.from_numpy(masks[i][idx])))
            xs.append(v)
            ms.append(m.as_subclass(torch.Tensor))
            sizes.append(len(idx))
        x = compute.slices(torch.cat(xs).numpy(), norm)
        with compute.autocast():
            fmap = model.forward_features(x)
        fmap = fmap.float()
        dense_target = mask_targets(torch.cat(ms), task_bits, fmap.shape[-2:]).to(compute.device)
        logits = torch.stack([model.forward_head(group)[1] for group in fmap.split(sizes)])
        target = torch.stack([t.amax(dim=(0, 2, 3)) for t in dense_target.split(sizes)])
        slice_loss = bce(logits, target)
        if args.mask_weight > 0:
            dense_loss = dense_bce(cam_logits(model, fmap), dense_target)
            loss = slice_loss + args.mask_weight * dense_loss
        else:  # mask-free: the masks only say whether each slice shows a lesion, never where
            dense_loss, loss = torch.zeros(()), slice_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 5.0)
        opt.step()
        schedule.step()
        recent.append((slice_loss.item(), dense_loss.item()))
        if (step + 1) % max(1, args.checkpoint_every) == 0:
            mean_slice, mean_dense = np.mean(recent, axis=0)
            if ckpt is not None:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                            "schedule": json.dumps(schedule.state_dict()), "torch_rng": torch.get_rng_state(),
                            "numpy_rng": json.dumps(rng.bit_generator.state)}, ckpt.with_suffix(".tmp"))
                ckpt.with_suffix(".tmp").replace(ckpt)  # a kill while saving keeps the previous one
            # logged once saved: a step in the log is a step --resume continues after
            log(f"{plane}: stage 1 step {step + 1}: mean loss {mean_slice:.4f} (labels) {mean_dense:.4f} (masks)")
            recent = []
    if args.stage1_positive_head:
        torch.nn.utils.parametrize.remove_parametrizations(model.classifier, "weight", leave_parametrized=True)
    if args.stage1_batchnorm:
        fold_batchnorm(model.features)
        model.features = plain


def exam_heads(model: MRNet, split: Split, plane: str, norm: Normalization,
               compute: Compute) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each exam of the split through the model in eval mode: forward_head's (pooled (S, channels), logits)."""
    model.eval()
    heads = []
    with torch.inference_mode():
        for i in range(len(split.ids)):
            x = compute.slices(split.volume(plane, i), norm)
            with compute.autocast():
                maps = model.forward_features(x)
            heads.append(model.forward_head(maps))
    return heads


def max_pooled(model: MRNet, split: Split, plane: str, norm: Normalization, compute: Compute) -> np.ndarray:
    """(exams, channels): each channel's max over an exam's slices of the pooled features, what MRNet's head reads."""
    return np.stack([pooled.amax(dim=0).cpu().numpy() for pooled, _ in exam_heads(model, split, plane, norm, compute)])


def refit_head(model: MRNet, train: Split, plane: str, tasks, l2: float, norm: Normalization, compute: Compute,
               nonnegative: bool = False) -> None:
    """The exam-level stage for the head alone: per task, an L2 logistic regression (penalty l2/2 * |c|^2) of the
    exam labels on the training exams' max-pooled features, standardised; folded back into MRNet's linear layer,
    w = c / sd and b = c0 - sum(c * mu / sd), so the model stays plain MRNet. Stage 1 trains the head on single
    slices; this fits it on the input it has in use, each channel's max over an exam. nonnegative: c >= 0, so
    w >= 0 (after a positive stage-1 head: a channel still counts only as lesion evidence, which the CAM shows)."""
    x = max_pooled(model, train, plane, norm, compute).astype(np.float64)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd < 1e-6] = 1.0  # a channel that never varies: its coefficient stays 0 under the penalty
    weights, biases = [], []
    for task in tasks:
        c0, c = fit_logistic((x - mu) / sd, train.labels[task], l2=l2, nonnegative=nonnegative)
        weights.append(c / sd)
        biases.append(c0 - float(np.sum(c * mu / sd)))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(np.stack(weights)))
        model.classifier.bias.copy_(torch.tensor(biases))


def predict_split(model: MRNet, split: Split, plane: str, norm: Normalization, compute: Compute) -> np.ndarray:
    """(exams, tasks): MRNet's exam logits."""
    return np.stack([logits.cpu().numpy() for _, logits in exam_heads(model, split, plane, norm, compute)])


def train_plane(plane, train: Split, valid: Split, tasks, args: TrainOptions, norm, compute: Compute, ckpt_dir: Path,
                log) -> tuple[MRNet, dict]:
    device = compute.device
    args = replace(args, slice_steps=args.plane_slice_steps.get(plane, args.slice_steps))
    torch.manual_seed(args.seed + ["axial", "coronal", "sagittal"].index(plane))
    rng = np.random.default_rng(args.seed)
    model = initial_model(args.init, len(tasks)).to(device).to(memory_format=torch.channels_last)
    opt = make_optimizer(model.parameters(), args.lr, args)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=args.plateau_factor,
                                                         patience=max(args.plateau_patience, 1))
    y_train = np.stack([train.labels[t] for t in tasks], axis=1).astype(np.float32)
    pos = y_train.sum(0).clip(1)
    pos_weight = torch.tensor((len(y_train) - pos) / pos, dtype=torch.float32, device=device)  # class-balanced BCE
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    ckpt = ckpt_dir / f"{plane}.pt"
    state = {"epoch": 0, "best_auc": -1.0, "best_epoch": 0, "history": []}
    best = None
    if ckpt.is_file():  # --resume: continue where the last epoch ended, random generators included
        saved = torch.load(ckpt, weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        plateau.load_state_dict(json.loads(saved["plateau"]))
        best, state = saved["best"], json.loads(saved["state"])
        rng.bit_generator.state = json.loads(saved["numpy_rng"])
        torch.set_rng_state(saved["torch_rng"])
        log(f"{plane}: resuming after epoch {state['epoch']}")

    def log_valid_auc(when: str) -> None:
        scores = predict_split(model, valid, plane, norm, compute)
        log(f"{plane} {when}: valid AUC " + " ".join(
            f"{t} {auc(valid.labels[t], scores[:, k])}" for k, t in enumerate(tasks)))
    has_masks = train.mask(plane, 0) is not None
    use_masks = args.mask_weight > 0 and has_masks  # the per-location loss on the CAM
    if has_masks and state["epoch"] == 0 and args.slice_steps > 0:
        pretrain(model, train, plane, tasks, args, norm, compute, log, ckpt_dir / f"{plane}.stage1.pt")
        log_valid_auc("after stage 1")
    if state["epoch"] == 0 and args.refit_head > 0:
        refit_head(model, train, plane, tasks, args.refit_head, norm, compute, nonnegative=args.stage1_positive_head)
        log_valid_auc(f"after refitting the head on the training exams (L2 {args.refit_head:g}"
                      + (", weights >= 0" if args.stage1_positive_head else "") + ")")
    if state["epoch"] == 0 and has_masks and args.slice_steps > 0:
        for group in opt.param_groups:
            group["lr"] = args.lr * args.stage2_lr_factor
    task_bits = task_bit_tensor(tasks)
    dense_loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(args.mask_pos_weight, device=device))
    log(f"{plane}: {'with' if use_masks else 'without'} lesion-mask supervision of the CAM")
    exams = TrainingExams(train, plane, use_masks, args.augment)
    while state["epoch"] < args.epochs and state["epoch"] - state["best_epoch"] < args.patience:
        model.train()
        order = rng.permutation(len(train.ids)).tolist()
        # batch_size=None: one exam at a time, as MRNet (exams have different slice counts). The loader's own
        # generator (seeded per epoch) gives the workers' seeds, so the global torch generator - which the
        # augmentation draws from when workers=0 - sees the same draws as before the DataLoader existed
        loader = torch.utils.data.DataLoader(
            exams, batch_size=None, sampler=order, num_workers=args.workers, prefetch_factor=4 if args.workers else None,
            generator=torch.Generator().manual_seed(args.seed * 1000 + state["epoch"]))
        losses, started = [], time.perf_counter()
        for i, vol, mask in tqdm(loader, total=len(order), desc=f"{plane} epoch {state['epoch'] + 1}", leave=False,
                                 disable=not args.progress):
            x = compute.slices(vol.numpy(), norm)
            with compute.autocast():
                features = model.forward_features(x)
            features = features.float()
            logits = model.forward_head(features)[1]
            loss = loss_fn(logits, torch.from_numpy(y_train[i]).to(device))
            if use_masks:
                loss = loss + args.mask_weight * dense_loss_fn(cam_logits(model, features), mask_targets(
                    mask, task_bits, features.shape[-2:]).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - started
        scores = predict_split(model, valid, plane, norm, compute)
        aucs = {t: auc(valid.labels[t], scores[:, k]) for k, t in enumerate(tasks)}
        mean_auc = float(np.mean([a for a in aucs.values() if a is not None] or [0.0]))
        y_valid = torch.from_numpy(np.stack([valid.labels[t] for t in tasks], axis=1).astype(np.float32))
        valid_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(  # the plateau schedule's signal
            torch.from_numpy(scores).float(), y_valid, pos_weight=pos_weight.cpu()).item())
        if args.plateau_patience > 0:
            plateau.step(valid_loss)
        state["epoch"] += 1
        state["history"].append({"epoch": state["epoch"], "loss": float(np.mean(losses)), "valid_loss": valid_loss,
                                 "valid_auc": aucs, "seconds": round(seconds, 1),
                                 "exams_per_s": round(len(order) / seconds, 2), "lr": opt.param_groups[0]["lr"]})
        if mean_auc > state["best_auc"]:
            state["best_auc"], state["best_epoch"] = mean_auc, state["epoch"]
            best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "best": best, "state": json.dumps(state),
                    "plateau": json.dumps(plateau.state_dict()), "numpy_rng": json.dumps(rng.bit_generator.state),
                    "torch_rng": torch.get_rng_state()}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)  # a kill while saving keeps the previous epoch's checkpoint
        # logged once saved: an epoch in the log is an epoch --resume continues after
        log(f"{plane} epoch {state['epoch']}: loss {np.mean(losses):.4f} valid loss {valid_loss:.4f} valid AUC "
            + " ".join(f"{t} {a if a is None else round(a, 3)}" for t, a in aucs.items())
            + f" ({seconds:.1f} s, {len(order) / seconds:.2f} exams/s)")
    if best is None:  # --epochs 0: the model stage 1 left
        best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    return model.cpu().eval(), state


def describe_data(data: Path, train: Split, valid: Split) -> str:
    counts = f"{len(train.ids)} train and {len(valid.ids)} valid exams"
    made = data / "phantom.json"
    if made.is_file():
        info = json.loads(made.read_text())
        return (f"Synthetic knee phantoms generated by mrnet.phantom (seed {info.get('seed')}, generator version "
                f"{info.get('generator_version')}): {counts}. No patient data.")
    return f"MRNet folder layout at {data.name}: {counts}"


def run_train(args: TrainOptions) -> dict:
    data, out = Path(args.data), Path(args.out)
    compute = compute_for(args.device)
    tasks = args.tasks
    train, valid = read_split(data, "train", tasks), read_split(data, "valid", tasks)
    planes = [p for p in train.planes if p in args.planes]
    norm = Normalization()
    ckpt_dir = out / "checkpoints"
    if any(ckpt_dir.glob("*.pt")) and not args.resume:
        raise MRNetError(f"{out} holds checkpoints of an earlier run: add --resume to continue it, or choose "
                         "another --out.")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    log_file = out / "train.log"

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
        with log_file.open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    start = time.time()
    models, histories, valid_logits = [], {}, {}
    for plane in planes:
        model, state = train_plane(plane, train, valid, tasks, args, norm, compute, ckpt_dir, log)
        models.append((ModelEntry(file=f"{plane}.safetensors", plane=plane, tasks=list(tasks)), model))
        histories[plane] = state
        valid_logits[plane] = predict_split(model, valid, plane, norm, compute_for("cpu", "fp32"))
    fusion, metrics = {}, {"valid": {}}
    for k, task in enumerate(tasks):
        x = np.stack([valid_logits[p][:, k] for p in planes], axis=1)
        intercept, coef = fit_logistic(x, valid.labels[task], l2=1.0)  # few valid exams: keep the fusion calibrated
        fusion[task] = {"intercept": intercept, "coef": {p: float(c) for p, c in zip(planes, coef)}}
        fused = intercept + x @ coef
        metrics["valid"][task] = {"fused": auc(valid.labels[task], fused),
                                  **{p: auc(valid.labels[task], x[:, j]) for j, p in enumerate(planes)}}
    command = "python -m mrnet " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if args.record_command is None \
        else args.record_command
    config = WeightsConfig(tasks=list(tasks), planes=planes, models=[], normalization=norm, fusion=fusion, provenance={
        "trained_on": args.trained_on or describe_data(data, train, valid),
        "training_command": command,
        "training_minutes": round((time.time() - start) / 60, 1),
        **({"resumed": True} if args.resume else {}),
        "metrics": metrics,
        "intended_use": "Research and teaching demo of CAM explanations for MRNet"
                        + (", trained on synthetic phantoms" if (data / "phantom.json").is_file() else "")
                        + ". Not for diagnosis.",
        "license": "MIT",
    })
    # the training exams' feature statistics, so that exams unlike them are flagged at analysis
    config.ood = fit_statistics({entry.plane: model for entry, model in models}, data, "train", norm, compute_for("cpu"))
    save_weights(out, config, models)
    write_card(out, config)
    (out / "training_history.json").write_text(json.dumps(histories, indent=2) + "\n")
    return metrics
