"""MediaPipe's legacy face mesh (0.10.21 wheel) with its full-range face detector.

The landmark model is run through a small graph built from MediaPipe's own ``FaceLandmarkCpu``
subgraph, fed with an image and a region of interest, so the tracker decides where to look
(exactly what MediaPipe's video graph does internally, but with the region under our control
and the model's face-presence score exposed as a confidence). The presence gate inside the
subgraph is opened (threshold -1) so low-confidence points still come out; callers judge them
by ``score``.

For photos, :class:`MediapipeFaceMeshStatic` wraps ``mp.solutions.face_mesh.FaceMesh`` in
``static_image_mode`` unchanged (its own short-range detector), for comparison.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from facepipe.errors import FacepipeError
from facepipe.tracking.backends.base import (
    Detection,
    FaceLandmarks,
    LandmarkBackend,
    Roi,
    landmark_box,
    rotation_from_points,
    square_crop,
    square_roi,
)
from facepipe.tracking.geometry import box_iou
from facepipe.tracking.schemes import MESH_468, MESH_478

_LOCK = threading.Lock()


def import_mediapipe():
    """``mediapipe``, imported quietly (glog/absl/TF chatter silenced first)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise FacepipeError(
            "the mediapipe tracking backend needs mediapipe==0.10.21: pip install 'mediapipe==0.10.21'"
        ) from exc
    if not hasattr(mp, "solutions"):
        raise FacepipeError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy face mesh; "
            "install mediapipe==0.10.21 (the last wheel that carries its models)"
        )
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    return mp


_LANDMARK_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_side_packet: "WITH_ATTENTION:with_attention"
output_stream: "LANDMARKS:face_landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:face_landmarks"
  input_side_packet: "WITH_ATTENTION:with_attention"
}
"""
_PRESENCE_STREAM = "facelandmarkcpu__face_presence_score"


def _landmark_solution(mp, refine: bool):
    """A SolutionBase running FaceLandmarkCpu on (image, roi), also emitting the presence score."""
    from google.protobuf import text_format
    from mediapipe.calculators.util import thresholding_calculator_pb2
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import solution_base
    from mediapipe.python._framework_bindings import resource_util, validated_graph_config

    resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
    config = text_format.Parse(_LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig())
    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(graph_config=config)
    expanded = calculator_pb2.CalculatorGraphConfig()
    expanded.ParseFromString(validated.binary_config)  # subgraphs inlined
    found = False
    for node in expanded.node:
        if node.calculator == "ThresholdingCalculator":
            node.options.Extensions[thresholding_calculator_pb2.ThresholdingCalculatorOptions.ext].threshold = -1.0
            found = True
    if not found or not any(_PRESENCE_STREAM in s for n in expanded.node for s in n.output_stream):
        raise FacepipeError(
            "this mediapipe build's FaceLandmarkCpu graph is not the 0.10.21 one; pin mediapipe==0.10.21"
        )
    expanded.output_stream.append(f"PRESENCE:{_PRESENCE_STREAM}")
    return solution_base.SolutionBase(
        graph_config=expanded,
        side_inputs={"with_attention": bool(refine)},
        outputs=["face_landmarks", _PRESENCE_STREAM],
    )


class MediapipeMesh(LandmarkBackend):
    """Face mesh landmarks (478 points with irises when ``refine``) and full-range detection.

    Args:
        refine: use the attention model (refined lips/eyes + 10 iris points, 478 in all).
        min_detection_score: detector threshold.
        detector: ``"full"`` (full-range model, faces up to ~5 m) with a short-range and a
            padded fallback for faces that fill or overflow the frame, or ``"short"``.
    """

    name = "mediapipe"

    def __init__(self, refine: bool = True, min_detection_score: float = 0.5, detector: str = "full"):
        self.mp = import_mediapipe()
        self.refine = refine
        self.scheme = MESH_478 if refine else MESH_468
        self.min_detection_score = min_detection_score
        self.detector_kind = detector
        self._lm = None
        self._det_full = None
        self._det_short = None

    # -- models (created on first use) ---------------------------------------------------------
    def _landmarker(self):
        if self._lm is None:
            with _LOCK:
                self._lm = _landmark_solution(self.mp, self.refine)
        return self._lm

    def _detector(self, kind: str):
        fd = self.mp.solutions.face_detection
        if kind == "full":
            if self._det_full is None:
                self._det_full = fd.FaceDetection(model_selection=1, min_detection_confidence=self.min_detection_score)
            return self._det_full
        if self._det_short is None:
            self._det_short = fd.FaceDetection(model_selection=0, min_detection_confidence=self.min_detection_score)
        return self._det_short

    # -- detection -----------------------------------------------------------------------------
    def detect(self, image: np.ndarray, tiled: bool = False) -> list[Detection]:
        """Faces in the image, best first.

        ``tiled`` also looks at overlapping crops of a 3x3 grid (each half the image's size),
        which finds faces too small for the detector's 192-pixel view of the whole frame
        (group photos, wide shots); it costs ten detector runs instead of one.
        """
        image = np.ascontiguousarray(image)
        kinds = ["full", "short"] if self.detector_kind == "full" else ["short"]
        dets: list[Detection] = []
        for kind in kinds:
            dets = self._run_detector(kind, image, (0, 0))
            if dets:
                break
        if tiled:
            h, w = image.shape[:2]
            th, tw = h // 2, w // 2
            for y0 in (0, h // 4, h - th):
                for x0 in (0, w // 4, w - tw):
                    dets += self._run_detector(
                        "full", np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw]), (x0, y0)
                    )
            dets = nms(dets, 0.3)
        if dets:
            return dets
        # A face that fills or overflows the frame: look again with a border around the image.
        h, w = image.shape[:2]
        pad = int(round(0.3 * max(h, w)))
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        return self._run_detector("short", padded, (-pad, -pad))

    def _run_detector(self, kind: str, image: np.ndarray, offset: tuple[int, int]) -> list[Detection]:
        """Detections in ``image`` moved by ``offset`` (x, y) into the caller's coordinates."""
        h, w = image.shape[:2]
        res = self._detector(kind).process(image)
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = np.array(
                [bb.xmin * w - 0.5, bb.ymin * h - 0.5, (bb.xmin + bb.width) * w - 0.5, (bb.ymin + bb.height) * h - 0.5],
                np.float32,
            )
            kps = np.array([[k.x * w - 0.5, k.y * h - 0.5] for k in d.location_data.relative_keypoints], np.float32)
            off = np.array(offset, np.float32)
            out.append(Detection(box + np.tile(off, 2), float(d.score[0]), kps.reshape(-1, 2) + off))
        out.sort(key=lambda d: -d.score)
        return out

    def roi_from_detection(self, det: Detection) -> Roi:
        # FaceDetectionFrontDetectionToRoi: rotation from the eyes (keypoints 0, 1), 1.5x square.
        rot = rotation_from_points(det.keypoints[0], det.keypoints[1]) if len(det.keypoints) >= 2 else 0.0
        return square_roi(det.box, rot, 1.5)

    def roi_from_landmarks(self, points: np.ndarray) -> Roi:
        # FaceLandmarkLandmarksToRoi: rotation from the outer eye corners (33, 263), bbox, 1.5x square.
        rot = rotation_from_points(points[33], points[263])
        return square_roi(landmark_box(points[:468]), rot, 1.5)

    def face_evidence(self, image: np.ndarray, points: np.ndarray) -> float:
        """The short-range detector's best score on the face's own region (a square 1.5x the
        landmarks' box, as the landmark model sees it), 0 when it finds nothing there."""
        if not np.isfinite(points).all():
            return float("nan")
        roi = self.roi_from_landmarks(points)
        crop = square_crop(image, roi.cx, roi.cy, roi.size, 192)
        res = self._detector("short").process(crop)
        return float(max((d.score[0] for d in res.detections or []), default=0.0))

    # -- landmarks -----------------------------------------------------------------------------
    def landmarks(self, image: np.ndarray, roi: Roi) -> FaceLandmarks:
        from mediapipe.framework.formats import rect_pb2

        h, w = image.shape[:2]
        rect = rect_pb2.NormalizedRect(
            x_center=(roi.cx + 0.5) / w,
            y_center=(roi.cy + 0.5) / h,
            width=max(roi.size, 1.0) / w,
            height=max(roi.size, 1.0) / h,
            rotation=roi.rotation,
        )
        out = self._landmarker().process({"image": np.ascontiguousarray(image), "roi": rect})
        score = float(getattr(out, _PRESENCE_STREAM) or 0.0)
        lms = out.face_landmarks
        if lms is None:
            pts = np.full((self.scheme.n_points, 3), np.nan, np.float32)
            return FaceLandmarks(pts, 0.0, roi)
        arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float32)
        pts = np.empty_like(arr)
        pts[:, 0] = arr[:, 0] * w - 0.5
        pts[:, 1] = arr[:, 1] * h - 0.5
        pts[:, 2] = arr[:, 2] * w  # MediaPipe: z uses roughly the same scale as x
        return FaceLandmarks(pts[: self.scheme.n_points], score, roi)

    def close(self) -> None:
        for obj in (self._lm, self._det_full, self._det_short):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # pragma: no cover - closing twice
                    pass
        self._lm = self._det_full = self._det_short = None


def nms(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy non-maximum suppression, best score first."""
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(box_iou(d.box, k.box)[0, 0] < iou_threshold for k in keep):
            keep.append(d)
    return keep


class MediapipeFaceMeshStatic(MediapipeMesh):
    """``mp.solutions.face_mesh.FaceMesh(static_image_mode=True)`` as MediaPipe ships it.

    Photos only (``image_faces``); video tracking uses :class:`MediapipeMesh`. Its short-range
    detector misses small faces, which :class:`MediapipeMesh` finds with the full-range one.
    """

    name = "mediapipe-static"

    def image_faces(
        self, image: np.ndarray, max_faces: int = 8, refine_steps: int = 0, tiled: bool = False
    ) -> list[FaceLandmarks]:
        h, w = image.shape[:2]
        with self.mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=max_faces,
            refine_landmarks=self.refine,
            min_detection_confidence=self.min_detection_score,
        ) as fm:
            res = fm.process(np.ascontiguousarray(image))
        faces = []
        for lms in res.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float32)
            pts = np.stack([arr[:, 0] * w - 0.5, arr[:, 1] * h - 0.5, arr[:, 2] * w], axis=1).astype(np.float32)
            faces.append(FaceLandmarks(pts[: self.scheme.n_points], 1.0, self.roi_from_landmarks(pts)))
        return faces
