#!/usr/bin/python3
"""Checks `spvit infer` on held-out NIfTI cases against an intensity-threshold baseline, with nibabel as the
independent reader (tests/infer/tests.cmake, volumes_e2e_*).

usage: volume_e2e_check.py DATASET INFER_OUT MIN_DICE MARGIN
       volume_e2e_check.py --same INFER_OUT OTHER_OUT...   (every label map equal, voxel for voxel)

DATASET: an nnU-Net v2 folder from `spvit synth --format nifti` (imagesTr/, labelsTr/, imagesTs/, labelsTs/).
INFER_OUT: the --out folder of `spvit infer --input DATASET/imagesTs --labels DATASET/labelsTs`.

The baseline: channel 0's intensity alone. The classes are ordered by their mean intensity over the training cases
and each test voxel takes the class whose mean is nearest (thresholds half-way between neighbouring means). Every
label map must have its image's shape and affine. The model's mean foreground Dice (recomputed here from the label
maps, and equal to the one spvit printed) must reach MIN_DICE and exceed the baseline's by MARGIN.
"""
import json
import os
import sys

import nibabel
import numpy as np


def dice_per_class(pred, ref, classes):
    """Dice of each foreground class; None where the class is in neither map."""
    out = []
    for c in range(1, classes):
        p, r = pred == c, ref == c
        total = p.sum() + r.sum()
        out.append(2.0 * np.logical_and(p, r).sum() / total if total else None)
    return out


def mean_foreground_dice(per_case):
    """spvit's (and nnU-Net's) mean: each class averaged over the cases where it is defined, then over the classes."""
    means = []
    for scores in zip(*per_case):
        defined = [s for s in scores if s is not None]
        if defined:
            means.append(np.mean(defined))
    return float(np.mean(means))


def same(first, others):
    cases = sorted(f for f in os.listdir(first) if f.endswith(".nii.gz"))
    if not cases:
        sys.exit(f"no label map in {first}")
    for other in others:
        for f in cases:
            a = nibabel.load(os.path.join(first, f))
            b = nibabel.load(os.path.join(other, f))
            if not np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)) or not np.allclose(a.affine, b.affine):
                sys.exit(f"{other}/{f} differs from {first}/{f}")
    print(f"{len(cases)} label map(s) of {first} equal those of {', '.join(others)}")


def main():
    if sys.argv[1] == "--same":
        return same(sys.argv[2], sys.argv[3:])
    dataset, out, min_dice, margin = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    labels = json.load(open(os.path.join(dataset, "dataset.json")))["labels"]
    classes = max(v for v in labels.values() if isinstance(v, int)) + 1
    # Class means of channel 0 over the training cases.
    sums, counts = np.zeros(classes), np.zeros(classes)
    for f in sorted(os.listdir(os.path.join(dataset, "labelsTr"))):
        case = f[: -len(".nii.gz")]
        ref = np.asarray(nibabel.load(os.path.join(dataset, "labelsTr", f)).dataobj).astype(int)
        img = np.asarray(nibabel.load(os.path.join(dataset, "imagesTr", case + "_0000.nii.gz")).dataobj)
        for c in range(classes):
            sums[c] += img[ref == c].sum()
            counts[c] += (ref == c).sum()
    means = sums / np.maximum(counts, 1)
    model_scores, baseline_scores = [], []
    for f in sorted(os.listdir(os.path.join(dataset, "labelsTs"))):
        case = f[: -len(".nii.gz")]
        ref_img = nibabel.load(os.path.join(dataset, "labelsTs", f))
        ref = np.asarray(ref_img.dataobj).astype(int)
        image = nibabel.load(os.path.join(dataset, "imagesTs", case + "_0000.nii.gz"))
        pred_img = nibabel.load(os.path.join(out, case + ".nii.gz"))
        pred = np.asarray(pred_img.dataobj).astype(int)
        if pred.shape != ref.shape or not np.allclose(pred_img.affine, image.affine, atol=1e-4):
            sys.exit(f"{case}: label map shape {pred.shape} / affine\n{pred_img.affine}\ndiffers from the image's "
                     f"{image.shape}\n{image.affine}")
        img = np.asarray(image.dataobj)
        baseline = np.abs(img[..., None] - means[None, None, None, :]).argmin(-1)
        model_scores.append(dice_per_class(pred, ref, classes))
        baseline_scores.append(dice_per_class(baseline, ref, classes))
    model, base = mean_foreground_dice(model_scores), mean_foreground_dice(baseline_scores)
    printed = json.load(open(os.path.join(out, "summary.json")))["metrics"]["mean_foreground_dice"]
    print(f"held-out cases: {len(model_scores)}; mean foreground Dice: model {model:.4f} (spvit printed {printed:.4f}), "
          f"intensity-threshold baseline {base:.4f}; required >= {min_dice} and >= baseline + {margin}")
    if abs(model - printed) > 1e-3:
        sys.exit("the Dice spvit printed differs from nibabel's recomputation")
    if model < min_dice or model < base + margin:
        sys.exit("FAILED: the model does not reach the required Dice")


if __name__ == "__main__":
    main()
