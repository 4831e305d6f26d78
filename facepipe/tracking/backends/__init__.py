"""Landmark backends behind one interface (:class:`LandmarkBackend`).

=================  ===============  =========================================================
name               scheme           notes
=================  ===============  =========================================================
mediapipe          mediapipe-478    default; face mesh with irises, full-range detector
mediapipe-468      mediapipe-468    face mesh without the attention (iris/lip) refinement
mediapipe-static   mediapipe-478    photos only: ``FaceMesh(static_image_mode=True)`` as shipped
fan / fan3d        ibug-68(-3d)     face-alignment FAN, only when its weights are on disk
=================  ===============  =========================================================
"""

from __future__ import annotations

from facepipe.errors import FacepipeError
from facepipe.tracking.backends.base import Detection, FaceLandmarks, LandmarkBackend, Roi
from facepipe.tracking.backends.fan import FanBackend, fan_available, missing_message
from facepipe.tracking.backends.mediapipe_mesh import MediapipeFaceMeshStatic, MediapipeMesh

BACKENDS = ("mediapipe", "mediapipe-468", "mediapipe-static", "fan", "fan3d")


def get_backend(name: str = "mediapipe", device: str = "cpu") -> LandmarkBackend:
    """A backend by name. Raises :class:`FacepipeError` (with what to do) when it cannot run here."""
    if name == "mediapipe":
        return MediapipeMesh(refine=True)
    if name == "mediapipe-468":
        b = MediapipeMesh(refine=False)
        b.name = "mediapipe-468"
        return b
    if name == "mediapipe-static":
        return MediapipeFaceMeshStatic(refine=True)
    if name in ("fan", "fan3d"):
        return FanBackend(three_d=name == "fan3d", device=str(device))
    raise FacepipeError(f"unknown tracking backend {name!r}: use one of {', '.join(BACKENDS)}")


def available_backends() -> dict[str, str]:
    """Each backend name -> "" when it can run here, else the reason it cannot (nothing is loaded)."""
    out = {}
    try:
        import mediapipe  # noqa: F401

        mp_ok = ""
    except ImportError:
        mp_ok = "mediapipe==0.10.21 is not installed"
    for n in ("mediapipe", "mediapipe-468", "mediapipe-static"):
        out[n] = mp_ok
    for n, three_d in (("fan", False), ("fan3d", True)):
        out[n] = "" if fan_available(three_d) else missing_message(three_d)
    return out


__all__ = ["BACKENDS", "Detection", "FaceLandmarks", "LandmarkBackend", "Roi", "available_backends", "get_backend"]
