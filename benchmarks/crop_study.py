"""Which face crop does the expression classifier respond to best? (how ``align``'s defaults were chosen)

    python benchmarks/crop_study.py [--workdir DIR]

Grid over the eye-centre distance (fraction of the crop width) and the eye-line height, plain
crops vs FER-like ones (resampled through 48 px, as FER-2013's training images were), scored on:

- the annotated photos in ``../shared/data/landmarks`` (eye centres from the 68 manual points),
  hand-labelled here as smiling (HAPPY) or not (NOT_HAPPY); one ambiguous photo is left out;
- lp_d0_grin.mp4: P(happy) in the grin (frames 25-60) vs the neutral ends (0-12, 72-);
- hdtf_aoc_talk.mp4 (a news anchor talking, not smiling): share of frames called neutral, P(happy).

Prints one line per setting. Needs the shared footage and the classifier weights; tracks the
two clips through the track stage (cached in ``--workdir``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAPPY = ("18489332_4", "2086996835_5", "3873491482_1", "SAN_test_1")
NOT_HAPPY = ("79378097_5", "9545523490_2", "2406586388_3", "3346359383_3", "2863107962_3", "3854178896_1")


def _clip_faces(name: str, step: int, workdir):
    from facepipe.analysis.align import eye_centres, grey
    from facepipe.io.media import probe
    from facepipe.io.reader import VideoReader
    from facepipe.jobs.faces import track_clip

    info = probe(DATA / "clips" / name)
    tracks = track_clip(info, workdir=workdir)
    idx = np.arange(0, info.frame_count, step)
    idx = idx[np.isfinite(tracks.landmarks[idx]).all(axis=(1, 2))]
    frames = VideoReader(info).read(idx).numpy()
    return idx, [grey(f) for f in frames], eye_centres(tracks.landmarks[idx])


def main(argv=None) -> int:
    import cv2
    import torch

    from facepipe.analysis.align import align_face, eye_centres, grey
    from facepipe.nn.expression import EMOTIONS, classify_faces, load_mini_xception

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.environ.get("FACEPIPE_WORKDIR"))
    args = ap.parse_args(argv)
    h, neutral = EMOTIONS.index("happy"), EMOTIONS.index("neutral")
    model = load_mini_xception()
    photos = []
    for stem in HAPPY + NOT_HAPPY:
        img = cv2.imread(str(DATA / "landmarks" / f"{stem}.jpg"))[..., ::-1].astype(np.float32) / 255
        pts = np.loadtxt(DATA / "landmarks" / f"{stem}.pts", skiprows=3, max_rows=68) - 1
        photos.append((grey(img), eye_centres(pts, "ibug-68")))
    grin = _clip_faces("lp_d0_grin.mp4", 1, args.workdir)
    talk = _clip_faces("hdtf_aoc_talk.mp4", 3, args.workdir)

    def probs(faces, eye_dist, eye_y, fer_like):
        crops = []
        for g, e in faces:
            c = align_face(g, e, 64, eye_dist, eye_y)
            if fer_like:
                c = cv2.resize(cv2.resize(c, (48, 48), interpolation=cv2.INTER_AREA), (64, 64))
            crops.append(np.clip(c, 0, 1))
        return classify_faces(model, torch.from_numpy(np.stack(crops))[:, None]).numpy()

    print(
        "eye_dist eye_y fer48 | photos: P(happy) smiling, others, correct | grin: P(happy) grin, neutral ends"
        " | talk: neutral share, P(happy)"
    )
    g_idx = grin[0]
    in_grin, ends = (g_idx >= 25) & (g_idx <= 60), (g_idx <= 12) | (g_idx >= 72)
    for eye_dist in (0.27, 0.30, 0.33, 0.36, 0.40, 0.44):
        for eye_y in (0.24, 0.27, 0.30, 0.34, 0.38, 0.42):
            for fer_like in (False, True):
                p = probs(photos, eye_dist, eye_y, fer_like)
                n = len(HAPPY)
                correct = int((p[:n].argmax(1) == h).sum() + (p[n:].argmax(1) != h).sum())
                pg = probs(list(zip(grin[1], grin[2])), eye_dist, eye_y, fer_like)[:, h]
                pt = probs(list(zip(talk[1], talk[2])), eye_dist, eye_y, fer_like)
                print(
                    f"{eye_dist:.2f} {eye_y:.2f} {int(fer_like)} | {p[:n, h].mean():.3f} {p[n:, h].mean():.3f} "
                    f"{correct}/{len(p)} | {pg[in_grin].mean():.3f} {pg[ends].mean():.3f} | "
                    f"{(pt.argmax(1) == neutral).mean():.2f} {pt[:, h].mean():.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
