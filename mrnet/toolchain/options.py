"""Training options as one dataclass (the CLI fills it; the library never sees an argparse Namespace).
Kept free of heavy imports so that `python -m mrnet train --help` stays fast."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainOptions:
    data: str                           # folder in MRNet's layout (train/, valid/, *-TASK.csv)
    out: str                            # weights folder to write
    epochs: int = 12
    patience: int = 3                   # early stopping: epochs without a better validation AUC
    lr: float = 1e-4
    weight_decay: float = 1e-4
    optimizer: str = "adam"             # adam or sgd
    mask_weight: float = 1.0            # lesion-mask loss on the CAM where DATA/masks exists; 0: none (stage 1
                                        # then learns from slice-level labels only; with slice_steps 0: plain MRNet)
    mask_pos_weight: float = 10.0
    slice_steps: int = 600              # stage 1 steps (phantoms with masks only)
    plane_slice_steps: dict[str, int] = field(default_factory=dict)  # these planes' stage 1 steps instead
    slice_batch: int = 24               # stage 1: slices per step
    subset_slices: int = 8              # stage 1: slices per subset (a small exam)
    stage1: str = "slices"              # single slices, or subsets (MRNet's max over the subset)
    hard_negatives: int = 1             # stage 1 (slices): the clean half of a step is the top 1/N of N times as
                                        # many random clean slices, by the model's own scores; 1: random
    stage1_lr: float = 1e-3             # cosine-annealed to 5 %
    stage1_batchnorm: bool = True       # BatchNorm after each conv in stage 1, folded into the convs afterwards
    stage1_positive_head: bool = False  # stage 1: the head's weights are softplus(v) > 0, so that a channel counts only
                                        # as lesion evidence (MRNet's head reads each channel's max over an exam's
                                        # slices, where a clean slice's anatomy cannot cancel it); 10x stage1_lr
    refit_head: float = 0.0             # > 0: after stage 1, the head is refitted on the training exams' max-pooled
                                        # features (L2 logistic regression with this penalty on standardised
                                        # channels; weights >= 0 with stage1_positive_head); 0: the head stage 1 left
    stage2_lr_factor: float = 0.3       # exam-level stage: lr multiplied by this
    seed: int = 0
    tasks: list[str] = field(default_factory=lambda: ["abnormal", "acl", "meniscus"])
    planes: list[str] = field(default_factory=lambda: ["axial", "coronal", "sagittal"])
    device: str = "auto"                # auto, cpu, cuda, cuda:N (mrnet.core.compute)
    threads: int = 0                    # CPU threads; 0: torch's default
    trained_on: str = ""                # provenance text for the model card; empty: described from the data
    record_command: str | None = None   # the command recorded in the card; None: this process's argv
    progress: bool = True
    init: str = "scratch"               # scratch (He), imagenet (torchvision's AlexNet), or a weights file
    augment: str = "ours"               # ours (10 deg, 8 % shift, 0.92-1.08 scale, flip) or stanford (see RECIPES)
    plateau_patience: int = 0           # > 0: lr x plateau_factor after this many epochs without a lower valid loss
    plateau_factor: float = 0.3
    workers: int = 0                    # DataLoader processes reading and augmenting exams (0: in the main process)
    checkpoint_every: int = 100         # stage 1: save its state (and log the mean loss) every this many steps
    resume: bool = False                # continue the run whose checkpoints are in OUT/checkpoints


# Presets of `train --recipe NAME`; an option given on the command line wins over its recipe.
RECIPES = {
    # MRNet as published (Bien et al., "Deep-learning-assisted diagnosis for knee magnetic resonance imaging:
    # development and retrospective validation of MRNet", PLOS Medicine 2018): AlexNet pretrained on ImageNet,
    # exam-level labels only. The numbers are those of the blog code's train.py (github.com/ahmedbesbes/mrnet),
    # which reimplements the paper: Adam, lr 1e-5, weight decay 0.01, 50 epochs, ReduceLROnPlateau(factor 0.3,
    # patience 3) on the validation loss, augmentation RandomRotate(25), RandomTranslate(0.11), RandomFlip.
    # One difference stays: ours trains the three tasks of a plane in one model (Stanford: one per task).
    "stanford": {"init": "imagenet", "optimizer": "adam", "lr": 1e-5, "weight_decay": 0.01, "epochs": 50,
                 "mask_weight": 0.0, "slice_steps": 0, "augment": "stanford", "plateau_patience": 3,
                 "plateau_factor": 0.3,
                 "patience": 10},  # ours: stop after 10 epochs without a better valid AUC (the blog never stops)
}
