"""What a bench run leaves in the tree: a Markdown summary, a compact JSON of the figures, and a chart.

`bench/fanout.py --out PREFIX` writes PREFIX.md (command, machine, code, load, the
tables), PREFIX.json (the summary figures per N and system: no sample series; those stay
in the run directory under .cache/) and PREFIX.svg (CPU ms per stream-second against N,
one line per system, drawn with matplotlib: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Drawn in this order, with these colours and labels (the relay's at the schema default, and at 0).
STYLE = {
    "nginx": ("#555555", "nginx-rtmp push"),
    "relay": ("#1f77b4", "relay, default write_interval"),
    "relay-wi0": ("#ff7f0e", "relay, write_interval 0"),
    "relay-pure": ("#9467bd", "relay, pure-Python path"),
    "direct": ("#2ca02c", "direct (no relay)"),
}


def cpu_table(by_n: dict[int, dict[str, dict[str, Any]]]) -> str:
    """CPU ms per stream-second for every N and system, with each relay's ratio to nginx."""
    systems = [s for s in STYLE if any(s in row for row in by_n.values())]
    relays = [s for s in systems if s.startswith("relay")]
    head = ["N", *systems, *(f"{r}/nginx" for r in relays if "nginx" in systems)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] * len(head)) + "|"]
    for n, row in sorted(by_n.items()):
        cells = [str(n)]
        for s in systems:
            summary = row.get(s)
            cells.append(f"{summary['cpu_ms_per_stream_s']:.2f}" if summary else "-")
        if "nginx" in systems:
            base = row.get("nginx", {}).get("cpu_ms_per_stream_s")
            for r in relays:
                value = row.get(r, {}).get("cpu_ms_per_stream_s")
                cells.append(f"{value / base:.2f}" if value and base else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(prefix: Path, out: dict[str, Any], by_n: dict[int, dict[str, dict[str, Any]]],
                 tables: list[str]) -> list[Path]:
    """PREFIX.md, PREFIX.json and PREFIX.svg for one run; the paths written."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md = prefix.with_suffix(".md")
    js = prefix.with_suffix(".json")
    svg = prefix.with_suffix(".svg")
    machine, code = out["machine"], out["code"]
    text = [
        f"# {prefix.name}: bench/fanout.py summary",
        "",
        "Written by the command below (raw samples of the run: `.cache/bench/runs/`).",
        "",
        "```",
        out["command"],
        "```",
        "",
        f"- machine: {machine['nproc']} x {machine['cpu_model']}, Python {machine['python']}, "
        f"uvloop {machine['uvloop']}, kernel {machine['kernel']}, nginx {machine['nginx']}",
        f"- load average at start: {' '.join(machine['loadavg_at_start'])}",
        f"- code: commit {code['commit']}, {code['relay_dirty_files']} changed files in relay/, "
        f"tree digest {code['relay_tree_sha256']}",
        "",
        "## CPU ms per stream-second",
        "",
        cpu_table(by_n),
        "",
        f"![CPU per stream-second against N]({svg.name})",
        "",
        "## Every figure",
        "",
        *(f"{t}\n" for t in tables),
    ]
    md.write_text("\n".join(text))
    compact = {key: out[key] for key in ("command", "machine", "code", "args")}
    compact["summaries"] = {str(n): row for n, row in sorted(by_n.items())}
    js.write_text(json.dumps(compact, indent=1, sort_keys=True, default=str) + "\n")
    draw(by_n, svg, title=f"CPU per stream-second (720p30 4 Mbit/s, "
                         f"{out['args'].get('targets', '6')} targets per stream), commit {code['commit']}")
    return [md, js, svg]


def draw(by_n: dict[int, dict[str, dict[str, Any]]], path: Path, title: str) -> None:
    """The chart: CPU ms per stream-second (user + kernel) against N, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "simulcast-relay"  # the same figures draw the same file
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: a small file, and searchable
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ns = sorted(by_n)
    for system, (colour, label) in STYLE.items():
        points = [(n, by_n[n][system]) for n in ns if system in by_n[n]]
        if not points or system == "direct":
            continue
        xs = [n for n, _ in points]
        ax.plot(xs, [s["cpu_ms_per_stream_s"] for _, s in points], marker="o", color=colour, label=label)
        ax.plot(xs, [s["cpu_kernel_per_stream_s"] for _, s in points], linestyle=":", color=colour, linewidth=1,
                label=f"  of which kernel")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("N live streams (x 6 targets)")
    ax.set_ylabel("CPU ms per stream-second")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
