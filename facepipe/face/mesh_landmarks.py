"""Private helper: mediapipe FaceMesh landmarks of a clip, in the tracker's pixel layout.

Used to build the face rig and by the fit tests, so they do not depend on the tracking stage.
Layout matches ``FaceTracks``: landmarks (T,478,3) float32 full-frame pixels (z in the same
pixel scale as x), NaN rows where no face was found; confidence (T,) float32 (1 = face, 0 = none).
Results are cached as .npz under ``$FACEPIPE_LMK_CACHE`` (default ``/tmp/facepipe_lmk``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from facepipe.io.media import probe
from facepipe.io.reader import VideoReader

CHUNK = 64


def _cache_path(path: str, indices: np.ndarray) -> Path:
    root = Path(os.environ.get("FACEPIPE_LMK_CACHE", "/tmp/facepipe_lmk"))
    st = Path(path).stat()
    h = hashlib.sha1(f"{Path(path).resolve()}|{st.st_size}|{indices.tobytes().hex()}".encode()).hexdigest()[:16]
    return root / f"{Path(path).stem}-{h}.npz"


def clip_landmarks(path: str, indices=None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(landmarks (T,478,3) float32 px, confidence (T,) float32, (W,H)) for ``indices`` of ``path``.

    FaceMesh runs in video mode over the selection in order, as the tracker does.
    """
    info = probe(path)
    indices = np.arange(info.frame_count) if indices is None else np.asarray(indices, np.int64)
    cache = _cache_path(path, indices)
    if cache.exists():
        d = np.load(cache)
        return d["landmarks"], d["confidence"], (info.width, info.height)

    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mediapipe as mp  # lazy: after the log-level variables above; a cache hit never loads it

    reader = VideoReader(info)
    out = np.full((len(indices), 478, 3), np.nan, np.float32)
    conf = np.zeros(len(indices), np.float32)
    w, h = info.width, info.height
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
    ) as mesh:
        for s in range(0, len(indices), CHUNK):
            frames = reader.read(indices[s : s + CHUNK])  # (t,3,H,W) float32 0..1
            rgb = (frames.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
            for j, img in enumerate(rgb):
                res = mesh.process(img)
                if not res.multi_face_landmarks:
                    continue
                lm = res.multi_face_landmarks[0].landmark
                out[s + j] = np.array([(p.x * w, p.y * h, p.z * w) for p in lm], np.float32)
                conf[s + j] = 1.0
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, landmarks=out, confidence=conf)
    return out, conf, (w, h)
