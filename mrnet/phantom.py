"""Synthetic knee MRI phantoms with voxel-exact lesion masks.

A 3-D knee is painted from simple shapes into a tissue-label volume (1.1 mm voxels), posed at
random, then resliced into MRNet's three stacks with plane-specific contrast (sagittal T2 fat-sat,
coronal T1, axial PD fat-sat), slab partial volume, texture, bias field and noise.

Lesions (each with a mask): ACL tear (fibre discontinuity + oedema), meniscal tear (a thin sheet
of fluid signal reaching the meniscal surface), and other abnormalities (bone-marrow oedema,
effusion, cartilage defect). abnormal = any lesion. Fluid, vessels, cysts and fat vary in every
exam, so that a lesion cannot be found from the intensity histogram alone.

Masks are stored per plane as uint8 bit fields aligned with the slices (dataset.MASK_BITS).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mrnet.core.config import (
    MASK_BITS,  # the folder format's lesion bits
    PLANES,
    TASKS,
)

GENERATOR_VERSION = 2  # bump when the same seed draws a different exam (cached samples are keyed by it)
N = 128            # voxels per side
VOXEL = 1.1        # mm
HALF = N * VOXEL / 2
PREVALENCE = {"acl": 0.23, "meniscus": 0.37, "abnormal": 0.80}

(AIR, SKIN, FAT, MUSCLE, CORTEX, MARROW, CARTILAGE, MENISCUS, LIGAMENT, FLUID, VESSEL,
 BONE_OEDEMA, TEAR_SIGNAL, ACL_OEDEMA) = range(14)
# signal per tissue, 0..1: sagittal T2 fat-sat, coronal T1, axial PD fat-sat (MRNet's three series)
CONTRAST = {
    "sagittal": [0.0, 0.35, 0.12, 0.28, 0.03, 0.15, 0.45, 0.06, 0.07, 0.95, 0.80, 0.70, 0.85, 0.75],
    "coronal":  [0.0, 0.50, 0.90, 0.35, 0.04, 0.85, 0.40, 0.06, 0.08, 0.22, 0.30, 0.35, 0.65, 0.30],
    "axial":    [0.0, 0.40, 0.15, 0.35, 0.04, 0.20, 0.55, 0.08, 0.09, 0.90, 0.75, 0.70, 0.85, 0.75],
}
# slice axis and the span it covers (mm) per plane
COVERAGE = {"sagittal": ("x", 44.0), "coronal": ("y", 40.0), "axial": ("z", 40.0)}


@dataclass
class Phantom:
    volumes: dict[str, np.ndarray]            # plane -> uint8 (S, 256, 256)
    masks: dict[str, np.ndarray]              # plane -> uint8 (S, 256, 256) bit field (MASK_BITS)
    labels: dict[str, int]                    # abnormal, acl, meniscus
    lesions: list[str] = field(default_factory=list)


class Painter:
    """Paints shapes into a label volume, evaluating each only inside its bounding box."""
    def __init__(self):
        self.labels = np.zeros((N, N, N), np.uint8)   # axes x (medial->lateral), y (anterior->posterior), z (inferior->superior)
        self.lesion = np.zeros((N, N, N), np.uint8)
        self.axis = (np.arange(N, dtype=np.float32) + 0.5) * VOXEL - HALF

    def box(self, lo, hi):
        idx = [slice(max(0, int((low + HALF) / VOXEL)), min(N, int((h + HALF) / VOXEL) + 2)) for low, h in zip(lo, hi)]
        x = self.axis[idx[0]][:, None, None]
        y = self.axis[idx[1]][None, :, None]
        z = self.axis[idx[2]][None, None, :]
        return tuple(idx), x, y, z

    def paint(self, region, inside, tissue, where=None, lesion_bit=0):
        idx = region
        target = self.labels[idx]
        m = inside if where is None else inside & np.isin(target, where)
        target[m] = tissue
        if lesion_bit:
            self.lesion[idx][m] |= lesion_bit
        return m

    def ellipsoid(self, c, r, tissue, grow=0.0, where=None, lesion_bit=0, cut=None):
        r = np.asarray(r, np.float32) + grow
        region, x, y, z = self.box(np.subtract(c, r), np.add(c, r))
        inside = ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1
        if cut is not None:
            inside = inside & cut(x, y, z)
        return self.paint(region, inside, tissue, where, lesion_bit)

    def capsule(self, a, b, radius, tissue, where=None, lesion_bit=0, t_range=(0.0, 1.0)):
        """Points within `radius` of segment a-b, restricted to the projection parameter range t_range."""
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        region, x, y, z = self.box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
        d = b - a
        t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / float(d @ d)
        tc = np.clip(t, 0, 1)
        dist2 = (x - a[0] - tc * d[0]) ** 2 + (y - a[1] - tc * d[1]) ** 2 + (z - a[2] - tc * d[2]) ** 2
        inside = (dist2 <= radius ** 2) & (t >= t_range[0]) & (t <= t_range[1])
        return self.paint(region, inside, tissue, where, lesion_bit)

    def cylinder_z(self, cx, cy, rx, ry, z0, z1, tissue, where=None, lesion_bit=0):
        region, x, y, z = self.box((cx - rx, cy - ry, z0), (cx + rx, cy + ry, z1))
        inside = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) & (z >= z0) & (z <= z1)
        return self.paint(region, inside, tissue, where, lesion_bit)


def choose_labels(rng: np.random.Generator) -> tuple[dict[str, int], list[str]]:
    acl = rng.random() < PREVALENCE["acl"]
    meniscus = rng.random() < PREVALENCE["meniscus"]
    p_none = (1 - PREVALENCE["acl"]) * (1 - PREVALENCE["meniscus"])
    other = rng.random() < (1 - (1 - PREVALENCE["abnormal"]) / p_none if not (acl or meniscus) else 0.4)
    lesions = (["acl_tear"] if acl else []) + (["meniscal_tear"] if meniscus else [])
    if other:
        lesions.append(str(rng.choice(["bone_marrow_oedema", "effusion", "cartilage_defect"])))
    return {"abnormal": int(bool(lesions)), "acl": int(acl), "meniscus": int(meniscus)}, lesions


def build_knee(rng: np.random.Generator, lesions: list[str]) -> Painter:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    s = u(0.9, 1.08)  # knee size
    P = Painter()
    # soft tissue envelope: skin, subcutaneous fat, muscle
    limb_r = (52 * s, 50 * s)
    P.cylinder_z(0, 4, limb_r[0], limb_r[1], -HALF, HALF, SKIN)
    P.cylinder_z(0, 4, limb_r[0] - 2, limb_r[1] - 2, -HALF, HALF, FAT)
    fat_t = u(4, 11)
    P.cylinder_z(0, 6, limb_r[0] - fat_t, limb_r[1] - fat_t, -HALF, HALF, MUSCLE)
    # anterior knee is fat and tendon, not muscle (Hoffa's fat pad and prepatellar fat)
    P.ellipsoid((0, -30 * s, -4), (26 * s, 16 * s, 18), FAT, where=[MUSCLE])
    # popliteal vessels and a variable number of small fluid pockets / veins in every exam
    vx, vr = u(-6, 6), u(2.5, 4.5)
    P.cylinder_z(vx, 30 * s, vr, vr, -HALF, HALF, VESSEL)
    P.cylinder_z(vx + u(5, 9), 31 * s, vr * u(0.8, 1.3), vr * u(0.8, 1.3), -HALF, HALF, VESSEL)
    for _ in range(rng.integers(0, 4)):
        P.ellipsoid((u(-40, 40), u(-10, 40), u(-45, 45)), (u(2, 6), u(2, 6), u(3, 10)), FLUID, where=[MUSCLE, FAT])
    if rng.random() < 0.3:  # Baker's cyst: normal variant, posterior-medial fluid
        P.ellipsoid((u(-25, -10), u(30, 38) * s, u(-10, 10)), (u(5, 10), u(4, 8), u(8, 16)), FLUID, where=[MUSCLE, FAT])
    # joint fluid: suprapatellar pouch of variable size in every exam (large in effusion)
    # (the two size ranges do not overlap, so "effusion" is a well-defined label)
    pouch = u(1.3, 1.8) if "effusion" in lesions else u(0.3, 0.85)
    pouch_shape = ((0, -20 * s, 30 * s), (22 * s * pouch ** 0.3, 6 * pouch, 14 * s * pouch ** 0.5))
    P.ellipsoid(*pouch_shape, FLUID)
    # bones: femur (shaft + two condyles), tibia (plateau + shaft), fibula, patella; cortex then marrow
    med, lat = (-14 * s, -1, 10 * s), (14 * s, 0, 10 * s)
    cond_r = (11 * s, 17 * s, 12 * s)
    plateau = (0, 0, -13 * s)

    def bones(grow, tissue, where=None):
        P.cylinder_z(0, 3, 15 * s + grow, 14 * s + grow, 12 * s, HALF, tissue, where)
        P.ellipsoid((0, 2, 17 * s), (27 * s, 19 * s, 10 * s), tissue, grow, where)
        P.ellipsoid(med, cond_r, tissue, grow, where)
        P.ellipsoid(lat, cond_r, tissue, grow, where)
        P.cylinder_z(plateau[0], plateau[1], 34 * s + grow, 25 * s + grow, -20 * s - grow, -2.5 * s + grow, tissue, where)
        P.cylinder_z(0, 2, 15 * s + grow, 14 * s + grow, -HALF, -15 * s, tissue, where)
        P.cylinder_z(27 * s, 14 * s, 6 + grow, 6 + grow, -HALF, -14 * s + grow, tissue, where)
        P.ellipsoid((0, -30 * s, 22 * s), (14 * s, 6 * s, 12 * s), tissue, grow, where)

    bones(2.5, CARTILAGE, where=[MUSCLE, FAT, FLUID])           # cartilage layer over every bone end
    P.cylinder_z(0, 0, 40 * s, 30 * s, -HALF, -6 * s, MUSCLE, where=[CARTILAGE])  # none on the shafts
    P.cylinder_z(0, 3, 40 * s, 30 * s, 22 * s, HALF, MUSCLE, where=[CARTILAGE])
    P.ellipsoid((0, -30 * s, 22 * s), (17 * s, 9 * s, 15 * s), CARTILAGE, where=[MUSCLE])  # keep the patellar cartilage
    P.ellipsoid((0, -36 * s, 22 * s), (17 * s, 5 * s, 15 * s), FAT, where=[CARTILAGE])    # only on its back
    bones(0.0, CORTEX)
    bones(-2.0, MARROW)
    # menisci: wedge-shaped rings between condyles and plateau (thick at the periphery)
    joint_z = -2.5 * s + 0.5
    menisci = []
    for cx in (med[0], lat[0]):
        r_in, r_out = 6 * s, 13 * s
        region, x, y, z = P.box((cx - r_out, -r_out, joint_z), (cx + r_out, r_out, joint_z + 6))
        r = np.sqrt((x - cx) ** 2 + (y - 0.5) ** 2)
        top = joint_z + 5.5 * np.clip((r - r_in) / (r_out - r_in), 0, 1)
        inside = (r >= r_in) & (r <= r_out) & (z >= joint_z) & (z <= top) & (np.abs(x) > 4)
        P.paint(region, inside, MENISCUS, where=[MUSCLE, FAT, CARTILAGE, FLUID, CORTEX])
        menisci.append((cx, r_in, r_out, joint_z))
    # intercondylar notch fat around the cruciates (bright on T1, dark on fat-sat)
    P.ellipsoid((0, 2, 2 * s), (9 * s, 18 * s, 9 * s), FAT, where=[MUSCLE])
    # cruciate ligaments in the notch: ACL (lateral femoral condyle -> anterior tibia), PCL
    acl_a = (5 * s + u(-1, 1), 9 * s + u(-2, 2), 12 * s)
    acl_b = (1 + u(-1, 1), -9 * s + u(-2, 2), joint_z)
    acl_r = u(3.0, 3.8)
    P.capsule(acl_a, acl_b, acl_r, LIGAMENT)
    P.capsule((-5 * s, -6 * s, 13 * s), (-1, 15 * s, joint_z - 2), u(3.5, 4.5), LIGAMENT)
    # collateral ligaments and patellar tendon
    P.capsule((-37 * s, 0, 22 * s), (-35 * s, 0, -25 * s), 2.2, LIGAMENT)
    P.capsule((37 * s, 2, 18 * s), (30 * s, 12 * s, -16 * s), 2.0, LIGAMENT)
    P.capsule((0, -33 * s, 9 * s), (0, -27 * s, -28 * s), u(2.5, 3.5), LIGAMENT)
    P.capsule((0, -30 * s, 34 * s), (0, -20 * s, HALF), 3.5, LIGAMENT)  # quadriceps tendon

    # lesions
    if "acl_tear" in lesions:
        t0 = u(0.25, 0.45)
        gap = (t0, t0 + u(0.25, 0.4))
        P.capsule(acl_a, acl_b, acl_r + u(3.0, 4.0), ACL_OEDEMA, where=[LIGAMENT, FAT, MUSCLE, FLUID],
                  lesion_bit=MASK_BITS["acl"], t_range=gap)
    if "meniscal_tear" in lesions:
        cx, r_in, r_out, jz = menisci[int(rng.integers(0, 2))]
        ang = u(0, 2 * np.pi)
        horizontal = rng.random() < 0.5
        region, x, y, z = P.box((cx - r_out, -r_out, jz), (cx + r_out, r_out, jz + 6))
        r = np.sqrt((x - cx) ** 2 + (y - 0.5) ** 2)
        phi = np.arctan2(y - 0.5, x - cx)
        dphi = np.abs((phi - ang + np.pi) % (2 * np.pi) - np.pi)
        arc = (dphi < u(0.8, 1.3)) & (r >= r_in - 1) & (r <= r_out - 1.5)
        if horizontal:   # horizontal cleavage reaching the inner free edge
            sheet = np.abs(z - (jz + 1.0 + 2.5 * np.clip((r - r_in) / (r_out - r_in), 0, 1))) < 1.5
        else:            # vertical longitudinal tear reaching the tibial and femoral surfaces
            sheet = np.abs(r - u(r_in + 2, r_out - 3)) < 1.5
        P.paint(region, arc & sheet, TEAR_SIGNAL, where=[MENISCUS], lesion_bit=MASK_BITS["meniscus"])
    if "bone_marrow_oedema" in lesions:
        c = med if rng.random() < 0.5 else lat
        z = c[2] + u(-6, -2) if rng.random() < 0.5 else plateau[2] + u(3, 7)
        P.ellipsoid((c[0] + u(-3, 3), u(-8, 8), z), (u(5, 8), u(6, 10), u(4, 6)), BONE_OEDEMA,
                    where=[MARROW], lesion_bit=MASK_BITS["other"])
    if "effusion" in lesions:  # the distended pouch is the lesion
        P.ellipsoid(*pouch_shape, FLUID, where=[FLUID], lesion_bit=MASK_BITS["other"])
    if "cartilage_defect" in lesions:
        c = med if rng.random() < 0.5 else lat
        P.ellipsoid((c[0] + u(-3, 3), c[1] + u(-6, 6), c[2] - cond_r[2] - 1), (u(5, 8), u(6, 9), 4.0), FLUID,
                    where=[CARTILAGE], lesion_bit=MASK_BITS["other"])
    return P


def pose(volumes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Random rotation (a few degrees about each axis) and shift, nearest-neighbour (labels stay labels)."""
    a = np.deg2rad(rng.uniform(-8, 8, 3))
    cx, sx, cy, sy, cz, sz = np.cos(a[0]), np.sin(a[0]), np.cos(a[1]), np.sin(a[1]), np.cos(a[2]), np.sin(a[2])
    rot = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
           @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
    theta = torch.tensor(np.concatenate([rot, rng.uniform(-0.06, 0.06, (3, 1))], axis=1), dtype=torch.float32)[None]
    grid = torch.nn.functional.affine_grid(theta, (1, 1, N, N, N), align_corners=False)
    out = []
    for v in volumes:
        t = torch.from_numpy(v.astype(np.float32))[None, None]
        out.append(torch.nn.functional.grid_sample(t, grid, mode="nearest", padding_mode="zeros",
                                                   align_corners=False)[0, 0].numpy().astype(np.uint8))
    return out


def smooth_noise(rng: np.random.Generator, shape, cells: int) -> np.ndarray:
    coarse = torch.from_numpy(rng.standard_normal((1, 1) + (cells,) * len(shape)).astype(np.float32))
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    return torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=False)[0, 0].numpy()


def reslice(volume: np.ndarray, plane: str, positions: np.ndarray, thickness: float, reducer=np.mean) -> np.ndarray:
    """(N, N, N) x,y,z -> (S, N, N) images as radiologists view them, each the slab mean (partial volume)."""
    axis = "xyz".index(COVERAGE[plane][0])
    centers = (positions + HALF) / VOXEL - 0.5
    half = thickness / VOXEL / 2
    slabs = []
    for c in centers:
        lo, hi = int(np.floor(c - half + 0.5)), int(np.floor(c + half + 0.5))
        idx = np.arange(max(lo, 0), min(max(hi, lo + 1), N))
        slabs.append(reducer(np.take(volume, idx, axis=axis), axis=axis))
    stack = np.stack(slabs)  # (S, a, b), the two remaining axes in x, y, z order
    if plane == "sagittal":   # (S, y, z) -> rows superior..inferior, columns anterior..posterior
        return stack.transpose(0, 2, 1)[:, ::-1, :]
    if plane == "coronal":    # (S, x, z) -> rows superior..inferior, columns x
        return stack.transpose(0, 2, 1)[:, ::-1, :]
    return stack              # axial (S, x, y) -> rows x, columns anterior..posterior


def render(labels: np.ndarray, texture: np.ndarray, plane: str, positions, thickness, rng) -> np.ndarray:
    lut = np.array(CONTRAST[plane], np.float32) * rng.uniform(0.88, 1.12, len(CONTRAST[plane])).astype(np.float32)
    signal = lut[labels] * texture
    slices = reslice(signal, plane, positions, thickness)
    s = len(slices)
    up = np.stack([cv2.resize(np.ascontiguousarray(im), (256, 256), interpolation=cv2.INTER_LINEAR) for im in slices])
    bias = 1 + 0.25 * smooth_noise(rng, (256, 256), 3)
    noise = rng.standard_normal(up.shape, dtype=np.float32) * rng.uniform(0.02, 0.05)
    img = np.abs(up * bias[None] + noise) * rng.uniform(0.9, 1.1)
    hi = np.percentile(img[s // 2], 99.5) or 1.0
    return np.clip(img / hi * 230, 0, 255).astype(np.uint8)


def generate_exam(seed: int, slices: int | None = None) -> Phantom:
    """One exam, deterministic per seed. slices: per plane, default random 20-40 per plane."""
    rng = np.random.default_rng(seed)
    labels, lesions = choose_labels(rng)
    knee = build_knee(rng, lesions)
    tissue, lesion = pose([knee.labels, knee.lesion], rng)
    texture = (1 + 0.12 * smooth_noise(rng, (N, N, N), 24)).astype(np.float32)
    volumes, masks = {}, {}
    for plane in PLANES:
        s = int(slices or rng.integers(20, 41))
        span = COVERAGE[plane][1]
        positions = np.linspace(-span, span, s) + rng.uniform(-2, 2)
        thickness = 2 * span / (s - 1) * rng.uniform(0.8, 1.0)
        volumes[plane] = render(tissue, texture, plane, positions, thickness, rng)
        mask = reslice(lesion, plane, positions, thickness, reducer=np.bitwise_or.reduce)
        masks[plane] = np.stack([cv2.resize(np.ascontiguousarray(m), (256, 256), interpolation=cv2.INTER_NEAREST)
                                 for m in mask])
    return Phantom(volumes=volumes, masks=masks, labels=labels, lesions=lesions)



def _write_one(job) -> tuple[str, dict, list]:
    out, split, exam_id, exam_seed = job
    ph = generate_exam(exam_seed)
    for plane in PLANES:
        np.save(out / split / plane / f"{exam_id}.npy", ph.volumes[plane])
        np.save(out / "masks" / split / plane / f"{exam_id}.npy", ph.masks[plane])
    return exam_id, ph.labels, ph.lesions


def write_dataset(out, n_train: int, n_valid: int, seed: int, progress: bool = True, workers: int = 1) -> dict:
    """MRNet's folder layout: {train,valid}/{axial,coronal,sagittal}/NNNN.npy, {split}-{task}.csv
    (`id,label`, no header, ids zero-padded to 4), plus masks/{split}/{plane}/NNNN.npy (uint8 bit
    fields, MASK_BITS), {split}-lesions.csv (`id,lesion;lesion`) and phantom.json (generator version,
    seed, label counts). Exam i of a split uses seed
    seed * 100000 + offset + i, so train and valid never share a seed."""
    out = Path(out)
    counts = {}
    for split, n, offset in (("train", n_train, 0), ("valid", n_valid, 50000)):
        for sub in ("", "masks/"):
            for plane in PLANES:
                (out / f"{sub}{split}" / plane).mkdir(parents=True, exist_ok=True)
        rows = {t: [] for t in TASKS}
        lesion_rows = []
        jobs = [(out, split, f"{i:04d}", seed * 100000 + offset + i) for i in range(n)]
        if workers > 1:
            with Pool(workers) as pool:
                results = list(tqdm(pool.imap(_write_one, jobs), total=n, desc=f"phantoms {split}", disable=not progress))
        else:
            results = [_write_one(j) for j in tqdm(jobs, desc=f"phantoms {split}", disable=not progress, leave=False)]
        for exam_id, labels, lesions in results:
            for t in TASKS:
                rows[t].append(f"{exam_id},{labels[t]}")
            lesion_rows.append(f"{exam_id},{';'.join(lesions)}")
        for t in TASKS:
            (out / f"{split}-{t}.csv").write_text("\n".join(rows[t]) + "\n")
        (out / f"{split}-lesions.csv").write_text("\n".join(lesion_rows) + "\n")
        counts[split] = {t: sum(int(r.split(",")[1]) for r in rows[t]) for t in TASKS} | {"n": n}
    # provenance for `mrnet train` (and people): which generator and seed made this folder
    (out / "phantom.json").write_text(json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed,
                                                  "counts": counts}, indent=2) + "\n")
    return counts
