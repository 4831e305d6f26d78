"""Harness reports as a markdown table (one row per edited clip) and a one-screen summary."""

from __future__ import annotations

from pathlib import Path

COLUMNS = (
    ("clip", "clip"),
    ("edit", "edit"),
    ("P(target) before->after", "p_target"),
    ("rose", "rose"),
    ("top after", "top_after"),
    ("sharp", "sharp"),
    ("identity cos", "identity"),
    ("speech r", "speech"),
    ("jitter x", "jitter"),
    ("flicker x", "flicker"),
    ("warp err x", "warp"),
    ("bg PSNR dB", "bg"),
    ("AU fidelity", "au"),
)


def _fmt(v, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def row(report: dict, label: str | None = None) -> dict[str, str]:
    """The table cells of one report."""
    emo, st = report.get("emotion") or {}, report.get("stability") or {}
    top = emo.get("top_after") or {}
    top_s = ", ".join(f"{k} {v:.0%}" for k, v in sorted(top.items(), key=lambda kv: -kv[1])[:2] if v > 0)
    ident = report.get("identity") or {}
    au = report.get("au_fidelity") or {}
    bg = (report.get("background") or {}).get("psnr_db")
    return {
        "clip": Path(report.get("source", "?")).name,
        "edit": label or Path(report.get("edited", "?")).name,
        "p_target": f"{emo.get('target') or report.get('emotion')}: "
        f"{_fmt(emo.get('mean_before'))}->{_fmt(emo.get('mean_after'))}",
        "rose": _fmt(emo.get("rose"), ".0%"),
        "top_after": top_s or "n/a",
        "sharp": _fmt((report.get("sharpness") or {}).get("ratio")),
        "identity": _fmt(ident.get("cosine"), ".3f") if "skipped" not in ident else "skipped",
        "speech": _fmt((report.get("speech") or {}).get("corr"))
        + ("" if (report.get("speech") or {}).get("meaningful", True) else " (still mouth)"),
        "jitter": _fmt(st.get("jitter_ratio")),
        "flicker": _fmt(st.get("flicker_ratio")),
        "warp": _fmt(st.get("warp_error_ratio")),
        "bg": ("identical" if bg is not None and bg >= 100 else _fmt(bg, ".1f")),
        "au": _fmt(au.get("overall")) if "skipped" not in au else "skipped",
    }


def markdown_table(reports: list[dict], labels: list[str] | None = None) -> str:
    """A markdown table of harness reports (see ``benchmarks/README.md`` for the columns)."""
    labels = labels or [None] * len(reports)
    head = "| " + " | ".join(t for t, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r, lab in zip(reports, labels):
        cells = row(r, lab)
        lines.append("| " + " | ".join(cells[k] for _, k in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def summary_lines(report: dict) -> list[str]:
    """A few lines for a terminal."""
    c = row(report)
    lines = [
        f"{c['clip']} -> {c['edit']} ({report.get('frames')} frames, {report.get('seconds')} s)",
        f"  emotion   {c['p_target']} (rose in {c['rose']} of frames); top classes after: {c['top_after']}",
        f"  sharpness {c['sharp']} "
        f"(a plain re-encode keeps {_fmt((report.get('sharpness') or {}).get('codec_ratio'))})",
        f"  identity  {c['identity']}"
        + (f" ({report['identity']['skipped']})" if "skipped" in (report.get("identity") or {}) else ""),
        f"  speech r  {c['speech']}   jitter x{c['jitter']}   flicker x{c['flicker']}   warping error x{c['warp']}"
        f"   background {c['bg']}"
        + ("" if c["bg"] in ("identical", "n/a") else " dB"),
        f"  AU fidelity {c['au']}"
        + (f" ({report['au_fidelity']['skipped']})" if "skipped" in (report.get("au_fidelity") or {}) else ""),
    ]
    lines += [f"  WARNING {w}" for w in report.get("warnings", [])]
    return lines
