"""Bad input through the real CLI: one clear line on stderr, a non-zero exit, no traceback
(unless --debug), the input untouched, and no output or temporary file left behind.

Most cases run in-process with click's CliRunner on ``facepipe.cli.main``; the full-disk case and
one smoke case run ``python -m facepipe`` in a subprocess (a real process, a real file size limit).
"""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import file_hash, leftovers

from facepipe.cli import main
from media_checks import timing_report
from facepipe.io.media import probe

USER_ERROR = 2  # FacepipeError.exit_code; internal errors exit 1
OUTPUT_EXISTS = 3


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def edit(clip, *args, workdir):
    return run_cli("edit", clip, "--emotion", "neutral", "--intensity", "0", "--progress", "off",
                   "--workdir", workdir, *args)


def assert_one_line_error(result, *needles, code=USER_ERROR):
    """A user error: exit ``code``, exactly one line on stderr naming the problem, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("facepipe: error: "), line
    assert "Traceback" not in result.stderr and "internal error" not in line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture
def inputs(tmp_path, make_clip):
    """A folder of bad (and good) inputs."""
    d = tmp_path / "in"
    d.mkdir()
    good = make_clip("good.mp4", frames=20, audio=True, directory=d)
    (d / "text.mp4").write_text("hello, this is not a movie\n" * 10)
    _audio_only(d / "audio.mp4")
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    fast = make_clip("fast.mp4", frames=20, audio=True, directory=d, container_options={"movflags": "faststart"})
    data = fast.read_bytes()
    (d / "truncated_faststart.mp4").write_bytes(data[: len(data) // 2])
    make_clip("zero.mkv", container_format="matroska", video_packets=False, audio=True, directory=d)
    (d / "empty.mp4").touch()
    (d / "afile").write_text("a regular file, not a folder\n")
    return d


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(20):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i * 1024
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def snapshot(folder: Path) -> dict:
    return {p.name: file_hash(p) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "name, needles",
    [
        ("missing.mp4", ["no such file"]),
        ("text.mp4", ["not a readable media file"]),
        ("audio.mp4", ["no video stream"]),
        ("truncated.mp4", ["truncated.mp4"]),
        ("truncated_faststart.mp4", ["truncated"]),
        ("zero.mkv", ["no frames"]),
        ("empty.mp4", ["empty"]),
    ],
)
def test_unreadable_inputs(inputs, tmp_path, name, needles):
    before = snapshot(inputs)
    out = tmp_path / "out.mp4"
    result = edit(inputs / name, "--out", out, workdir=tmp_path / "w")
    assert_one_line_error(result, *needles)
    assert snapshot(inputs) == before  # inputs untouched
    assert not out.exists() and not leftovers(tmp_path)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--codec", "nope"], ["unknown codec 'nope'", "h264"]),
        (["--codec", "prores", "--out", "{d}/x.mp4"], ["prores cannot be written to .mp4", ".mov"]),
        (["--out", "{d}/x.avi"], ["unsupported output extension"]),
        (["--out", "{d}/x.png"], ["frame-number pattern"]),
        (["--frames", "9-3"], ["end comes before the start"]),
        (["--frames", "1-4x0"], ["step"]),
        (["--frames", "abc"], ["bad frame range 'abc'"]),
        (["--frames", "0-20"], ["outside the clip (frames 0-19)"]),
        (["--frames", "1-3", "--frame-base", "timecode"], ["no timecode"]),
        (["--out", "{d}/good.mp4"], ["is the input file"]),
        (["--out", "{d}/text.mp4"], ["exists", "--force"]),
        (["--out", "{d}/afile/out.mp4"], ["afile is not a directory"]),
        (["--out", "{d}/nodir/out.mp4"], ["does not exist"]),
        (["--out", "/proc/facepipe-test.mp4"], ["cannot write"]),
        (["--codec", "dnxhr", "--out", "{d}/x.mov"], ["at least 256x120"]),
    ],
)
def test_bad_requests(inputs, tmp_path, args, needles):
    before = snapshot(inputs)
    args = [a.format(d=inputs) for a in args]
    result = edit(inputs / "good.mp4", *args, workdir=tmp_path / "w")
    assert_one_line_error(result, *needles, code=OUTPUT_EXISTS if "exists" in needles else USER_ERROR)
    assert snapshot(inputs) == before
    assert not leftovers(inputs) and not leftovers(tmp_path) and not list(Path("/proc").glob("*facepipe-tmp*"))
    assert not (inputs / "good.neutral.mp4").exists()


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--emotion", "giddy"], ["unknown emotion 'giddy'"]),
        (["--emotion", "neutral", "--intensity", "1.6"], ["out of range", "from 0 to 1.5"]),
        (["--emotion", "neutral", "--intensity", "-0.1"], ["out of range"]),
        (["--emotion", "neutral", "--intensity", "nan"], ["out of range"]),
    ],
)
def test_bad_edit_parameters(inputs, tmp_path, extra, needles):
    result = run_cli("edit", inputs / "good.mp4", *extra, "--workdir", tmp_path / "w")
    assert_one_line_error(result, *needles)
    assert not (inputs / "good.neutral.mp4").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_by_permissions(inputs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = edit(inputs / "good.mp4", "--out", locked / "out.mp4", workdir=tmp_path / "w")
        assert_one_line_error(result, "not writable")
    finally:
        locked.chmod(0o700)


def test_existing_output_with_force(inputs, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_text("old")
    assert_one_line_error(edit(inputs / "good.mp4", "--out", out, workdir=tmp_path / "w"), "exists", code=OUTPUT_EXISTS)
    assert out.read_text() == "old"
    result = edit(inputs / "good.mp4", "--out", out, "--force", workdir=tmp_path / "w")
    assert result.exit_code == 0, result.stderr
    assert probe(out).frame_count == 20 and timing_report(str(inputs / "good.mp4"), str(out)).ok


@pytest.mark.parametrize(
    "props",
    [
        dict(width=63, height=47, pix_fmt="yuv444p"),
        dict(rotation=90),
        dict(pts=[0, 1000, 2500, 3000, 4700, 5000, 6000, 8000], time_base=__import__("fractions").Fraction(1, 30000)),
        dict(codec="libx265", pix_fmt="yuv420p10le"),
    ],
    ids=["odd-size", "rotation", "vfr", "10-bit"],
)
def test_difficult_but_valid_inputs_work(make_clip, tmp_path, props):
    frames = len(props.get("pts", [])) or 8
    src = make_clip(frames=frames, audio=True, **props)
    digest = file_hash(src)
    out = tmp_path / "out.mp4"
    result = edit(src, "--out", out, workdir=tmp_path / "w")
    assert result.exit_code == 0, result.stderr
    assert "wrote" in result.stdout
    assert timing_report(str(src), str(out)).ok
    a, b = probe(src), probe(out)
    assert (b.width, b.height, b.rotation) == (a.width, a.height, a.rotation)
    assert (b.bit_depth > 8) == (a.bit_depth > 8)
    if props.get("width") == 63:
        assert b.pix_fmt == "yuv444p"  # 4:2:0 cannot hold an odd size
    assert file_hash(src) == digest and not leftovers(tmp_path)


def test_debug_shows_the_exception(inputs, tmp_path):
    result = run_cli("--debug", "edit", inputs / "text.mp4", "--emotion", "neutral", "--intensity", "0",
                     "--workdir", tmp_path / "w")
    from facepipe.errors import MediaError

    assert isinstance(result.exception, MediaError)  # re-raised, so a real run prints the traceback


# ------------------------------------------------------------------------------ real processes


def facepipe_process(*args, preexec_fn=None, timeout=120):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "facepipe", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, preexec_fn=preexec_fn)


def test_process_error_has_no_traceback_unless_debug(inputs, tmp_path):
    r = facepipe_process("edit", inputs / "text.mp4", "--emotion", "neutral", "--intensity", "0",
                         "--workdir", tmp_path / "w")
    assert r.returncode == USER_ERROR
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("facepipe: error:"), r.stderr
    r = facepipe_process("edit", inputs / "text.mp4", "--emotion", "neutral", "--intensity", "0",
                         "--workdir", tmp_path / "w", "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr


def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("out_name, codec", [("full.mp4", "h264"), ("full.mov", "prores")])
def test_full_disk(make_clip, tmp_path, out_name, codec):
    """A write that fails for real (EFBIG from a file size limit) ends in one clear line and leaves
    neither the output nor a temporary file. The artifact cache is filled first, unlimited, so
    the limit hits the movie being written."""
    src = make_clip(frames=20, audio=True, width=128, height=96)
    digest = file_hash(src)
    work = tmp_path / "w"
    warm = edit(src, "--out", tmp_path / "warm.mp4", workdir=work)
    assert warm.exit_code == 0, warm.stderr
    out = tmp_path / "outdir" / out_name
    out.parent.mkdir()
    r = facepipe_process("edit", src, "--emotion", "neutral", "--intensity", "0", "--progress", "off",
                         "--workdir", work, "--out", out, "--codec", codec, preexec_fn=_file_size_limit(4096))
    assert r.returncode == USER_ERROR, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facepipe: error: cannot write"), r.stderr
    assert "file size limit" in lines[0] or "disk is full" in lines[0]
    assert list(out.parent.iterdir()) == []
    assert file_hash(src) == digest
