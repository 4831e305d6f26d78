"""face-alignment's FAN (2D-FAN-4 / 3D-FAN-4, iBUG 68 points), only with weights already on disk.

face_alignment downloads its weights on first use into ``torch.hub.get_dir()/checkpoints``
(``~/.cache/torch/hub/checkpoints`` unless ``TORCH_HOME`` is set). facepipe never lets it do
that at run time: this backend looks for the files there and raises
:class:`~facepipe.errors.WeightsMissingError` naming the file and where to get it when they are
missing. Faces are found with MediaPipe's detector (face_alignment's own detectors would
download weights too); the network is built from ``face_alignment.models.FAN`` and loaded
directly, without ``torch.compile``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from facepipe.errors import WeightsMissingError
from facepipe.tracking.backends.base import Detection, FaceLandmarks, LandmarkBackend, Roi, landmark_box, square_roi
from facepipe.tracking.backends.mediapipe_mesh import MediapipeMesh
from facepipe.tracking.schemes import IBUG_68, IBUG_68_3D

#: The files face_alignment 1.4/1.5 fetches (its ``models_urls``), by network.
FAN_URLS = {
    "2DFAN-4": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
    "3DFAN-4": "https://www.adrianbulat.com/downloads/python-fan/3DFAN4-7835d9f11d.pth.tar",
    "depth": "https://www.adrianbulat.com/downloads/python-fan/depth-2a464da4ea.pth.tar",
}


def fan_checkpoint_dir() -> Path:
    """Where face_alignment keeps (and looks for) its weights: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fan_weight_paths(three_d: bool = False) -> dict[str, Path]:
    names = ["3DFAN-4", "depth"] if three_d else ["2DFAN-4"]
    try:  # prefer the URLs of the installed face_alignment, in case a release changes them
        from face_alignment.api import models_urls

        urls = {k: models_urls.get(k, v) for k, v in FAN_URLS.items()}
    except Exception:  # pragma: no cover - face_alignment not installed / changed
        urls = FAN_URLS
    d = fan_checkpoint_dir()
    return {n: d / os.path.basename(urls[n]) for n in names}


def fan_available(three_d: bool = False) -> bool:
    """True when face_alignment is importable and the FAN weights are on disk (nothing is fetched)."""
    try:
        import face_alignment  # noqa: F401
    except ImportError:
        return False
    return all(p.is_file() for p in fan_weight_paths(three_d).values())


def missing_message(three_d: bool = False) -> str:
    paths = fan_weight_paths(three_d)
    missing = [n for n, p in paths.items() if not p.is_file()]
    urls = ", ".join(FAN_URLS[n] for n in missing)
    return (
        f"the FAN tracking backend needs face-alignment weights {', '.join(missing)} in {fan_checkpoint_dir()} "
        f"(not found; facepipe never downloads at run time). Download {urls} into that folder "
        "(or set TORCH_HOME to a folder whose hub/checkpoints holds them), or use --backend mediapipe"
    )


class FanBackend(LandmarkBackend):
    """FAN landmarks on MediaPipe detections.

    Args:
        three_d: 3D-FAN-4 plus the depth network (``ibug-68-3d``); else 2D-FAN-4 (``ibug-68``, z = 0).
        device: torch device for the network.
        flip_input: average with the horizontally flipped crop (slower, slightly more accurate).
    """

    name = "fan"

    def __init__(self, three_d: bool = False, device: str = "cpu", flip_input: bool = False):
        try:
            import face_alignment  # noqa: F401
        except ImportError as exc:
            raise WeightsMissingError(
                "the FAN backend needs face-alignment: pip install 'face-alignment>=1.4'"
            ) from exc
        if not fan_available(three_d):
            raise WeightsMissingError(missing_message(three_d))
        from face_alignment.models import FAN, ResNetDepth

        self.three_d = three_d
        self.scheme = IBUG_68_3D if three_d else IBUG_68
        self.name = "fan3d" if three_d else "fan"
        self.device = torch.device(device)
        self.flip_input = flip_input
        paths = fan_weight_paths(three_d)
        net = FAN(4)
        state = torch.load(paths["3DFAN-4" if three_d else "2DFAN-4"], map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self.net = net.to(self.device).eval()
        self.depth = None
        if three_d:
            depth = ResNetDepth()
            ckpt = torch.load(paths["depth"], map_location="cpu", weights_only=False)
            depth.load_state_dict({k.replace("module.", ""): v for k, v in ckpt["state_dict"].items()})
            self.depth = depth.to(self.device).eval()
        self._detector = MediapipeMesh(refine=False)

    def detect(self, image: np.ndarray, tiled: bool = False) -> list[Detection]:
        return self._detector.detect(image, tiled=tiled)

    def roi_from_detection(self, det: Detection) -> Roi:
        return square_roi(det.box, 0.0, 1.5)

    def roi_from_landmarks(self, points: np.ndarray) -> Roi:
        return square_roi(landmark_box(points), 0.0, 1.5)

    def landmarks(self, image: np.ndarray, roi: Roi) -> FaceLandmarks:
        from face_alignment.utils import crop, draw_gaussian, flip, get_preds_fromhm

        box = roi.size / 1.5  # the face box the region was made from
        center = np.array([roi.cx, roi.cy - 0.12 * box], np.float64)  # face_alignment's box-centre offset
        scale = 2.0 * box / 195.0  # its REFERENCE_SCALE for (w + h)
        inp = crop(image, center, scale).transpose((2, 0, 1)).astype(np.float32) / 255.0
        x = torch.from_numpy(inp)[None].to(self.device)
        with torch.no_grad():
            out = self.net(x)
            out = out[-1] if isinstance(out, list) else out
            if self.flip_input:
                out_f = self.net(flip(x))
                out_f = out_f[-1] if isinstance(out_f, list) else out_f
                out = out + flip(out_f, is_label=True)
        hm = out.detach().cpu().float().numpy()
        pts, pts_img, scores = get_preds_fromhm(hm, center, scale)
        pts = pts.reshape(68, 2) * 4
        pts_img = pts_img.reshape(68, 2)
        z = np.zeros((68, 1), np.float32)
        if self.depth is not None:
            heat = np.zeros((68, 256, 256), np.float32)
            for j in range(68):
                if pts[j, 0] > 0 and pts[j, 1] > 0:
                    heat[j] = draw_gaussian(heat[j], pts[j], 2)
            with torch.no_grad():
                d = self.depth(torch.cat([x, torch.from_numpy(heat)[None].to(self.device)], 1))
            z = d.detach().cpu().numpy().reshape(68, 1) * (200.0 * scale / 256.0)
        points = np.concatenate([pts_img, z], axis=1).astype(np.float32)
        score = float(np.clip(np.mean(scores) / (2.0 if self.flip_input else 1.0), 0.0, 1.0))
        return FaceLandmarks(points, score, roi)

    def close(self) -> None:
        self._detector.close()
