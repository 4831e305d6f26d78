"""The backend interface: a face detector plus a landmark model that runs on a region of interest.

Coordinates are full-image pixels with the origin at the centre of the top-left pixel. Images
are ``(H,W,3) uint8`` RGB numpy arrays.

A tracker drives a backend in two steps, the way MediaPipe's own video graph does:

1. ``detect(image)`` finds faces (boxes, scores, eye/nose/mouth keypoints);
   ``roi_from_detection`` turns one into a rotated square region of interest.
2. ``landmarks(image, roi)`` runs the landmark model on that region and returns the points and
   a presence score; ``roi_from_landmarks`` gives the region for the next frame, so landmark
   tracking needs no detector between detections.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import cv2
import numpy as np

from facepipe.tracking.schemes import LandmarkScheme


@dataclass
class Roi:
    """A rotated square region in pixels: centre, side length and rotation.

    ``rotation`` follows MediaPipe's NormalizedRect convention (radians; the angle that turns
    the face upright, so that the eyes of the cropped face lie on a horizontal line).
    """

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def shifted(self, dx: float, dy: float) -> "Roi":
        return Roi(self.cx + dx, self.cy + dy, self.size, self.rotation)

    def box(self) -> np.ndarray:
        """Axis-aligned (4,) x0,y0,x1,y1 of the unrotated square."""
        h = self.size / 2
        return np.array([self.cx - h, self.cy - h, self.cx + h, self.cy + h], np.float32)

    def to_json(self) -> list[float]:
        return [float(self.cx), float(self.cy), float(self.size), float(self.rotation)]

    @classmethod
    def from_json(cls, v) -> "Roi":
        return cls(*map(float, v))


@dataclass
class Detection:
    """One detected face: box (4,) x0,y0,x1,y1 px, score 0..1, keypoints (K,2) px."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))


@dataclass
class FaceLandmarks:
    """Landmarks of one face: points (N,3) float32 px, presence score 0..1, and the roi used."""

    points: np.ndarray
    score: float
    roi: Roi | None = None

    def box(self) -> np.ndarray:
        return landmark_box(self.points)


def square_crop(image: np.ndarray, cx: float, cy: float, size: float, out: int) -> np.ndarray:
    """(out,out,3) crop of the square of side ``size`` centred at (cx, cy), edge-padded, resized."""
    h, w = image.shape[:2]
    s = max(2, int(round(size)))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    px0, py0 = max(0, -x0), max(0, -y0)
    px1, py1 = max(0, x0 + s - w), max(0, y0 + s - h)
    crop = image[max(0, y0) : min(h, y0 + s), max(0, x0) : min(w, x0 + s)]
    if px0 or py0 or px1 or py1:
        crop = np.pad(crop, ((py0, py1), (px0, px1), (0, 0)), mode="edge")
    if crop.size == 0:
        return np.zeros((out, out, 3), np.uint8)
    return cv2.resize(np.ascontiguousarray(crop), (out, out), interpolation=cv2.INTER_AREA)


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(4,) x0,y0,x1,y1 of (N,>=2) points (NaN-safe)."""
    p = np.asarray(points)[:, :2]
    return np.array([*np.nanmin(p, axis=0), *np.nanmax(p, axis=0)], np.float32)


def normalize_radians(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def rotation_from_points(start: np.ndarray, end: np.ndarray, target_angle: float = 0.0) -> float:
    """MediaPipe's DetectionsToRects rotation from two keypoints (pixels)."""
    return normalize_radians(target_angle - math.atan2(-(end[1] - start[1]), end[0] - start[0]))


def square_roi(box: np.ndarray, rotation: float, scale: float) -> Roi:
    """MediaPipe's RectTransformation(square_long, scale) of an axis-aligned box."""
    x0, y0, x1, y1 = (float(v) for v in box)
    size = max(x1 - x0, y1 - y0) * scale
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, size, rotation)


class LandmarkBackend(ABC):
    """A face detector and a landmark model behind one interface."""

    #: Short name used on the command line and in artifacts.
    name: str
    #: What the points of ``landmarks()`` mean.
    scheme: LandmarkScheme

    @abstractmethod
    def detect(self, image: np.ndarray, tiled: bool = False) -> list[Detection]:
        """Faces in ``image`` (H,W,3) uint8 RGB, best first (``tiled``: also search crops for small faces)."""

    @abstractmethod
    def landmarks(self, image: np.ndarray, roi: Roi) -> FaceLandmarks:
        """Landmarks of the face inside ``roi`` (always returns points; check ``score``)."""

    @abstractmethod
    def roi_from_detection(self, det: Detection) -> Roi:
        """Region for ``landmarks()`` from a detection."""

    @abstractmethod
    def roi_from_landmarks(self, points: np.ndarray) -> Roi:
        """Region for the next frame's ``landmarks()`` from this frame's points."""

    def face_evidence(self, image: np.ndarray, points: np.ndarray) -> float:
        """How clearly a face is visible where ``points`` say it is (0..1; NaN if unknown).

        The default runs ``detect`` on a square crop around the face; backends may do better.
        """
        roi = self.roi_from_landmarks(points)
        crop = square_crop(image, roi.cx, roi.cy, roi.size, 192)
        dets = self.detect(cv2.resize(crop, (192, 192)) if crop.shape[0] != 192 else crop)
        return max((d.score for d in dets), default=0.0)

    def image_faces(
        self, image: np.ndarray, max_faces: int = 8, refine_steps: int = 1, tiled: bool = False
    ) -> list[FaceLandmarks]:
        """Landmarks of every face in a still image (detect, then refine the region from the points).

        ``refine_steps`` re-runs the landmark model on the region derived from its own points,
        which centres the face the way the model was trained (as in video tracking).
        """
        faces = []
        for det in self.detect(image, tiled=tiled)[:max_faces]:
            res = self.landmarks(image, self.roi_from_detection(det))
            for _ in range(refine_steps):
                again = self.landmarks(image, self.roi_from_landmarks(res.points))
                if again.score >= res.score * 0.9:
                    res = again
            faces.append(res)
        return faces

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
