"""The plot of bench/peers.py: per-sandbox setup latency against sandbox index,
for every contender at its largest N (median over runs at each index).

matplotlib is not a dependency of cnet: install it into the venv
(`.venv/bin/pip install matplotlib`) to get the PNG; without it the plot is
skipped with that reason.
"""

from __future__ import annotations

import statistics
from pathlib import Path

STYLE = {"cnet": "-", "peer": "--", "script": ":"}


def curve(row: dict) -> tuple[list[int], list[float], str]:
    """(sandbox numbers from 1, ms, how) for one summary row of peers.py."""
    by_index: dict[int, list[float]] = {}
    for run in row["per_run"]:
        for i, t in run["setup"]:
            by_index.setdefault(i, []).append(t)
    if by_index:
        xs = sorted(by_index)
        return [i + 1 for i in xs], [statistics.median(by_index[i]) * 1000 for i in xs], "each"
    n = row["sandboxes"]  # no per-sandbox times: the total / N, flat
    return [1, n], [row["setup"]["median"] * 1000] * 2, "flat"


def plot(rows: list[dict], path: Path) -> tuple[Path | None, str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed in this venv (.venv/bin/pip install matplotlib)"
    from contenders import CONTENDERS

    family = {c.name: c.family for c in CONTENDERS}
    order = [c.name for c in CONTENDERS]
    largest = {}
    for r in rows:
        if r["sandboxes"] >= largest.get(r["contender"], {"sandboxes": 0})["sandboxes"]:
            largest[r["contender"]] = r
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=110)
    colors = plt.get_cmap("tab10")
    for k, name in enumerate(o for o in order if o in largest):
        r = largest[name]
        xs, ys, how = curve(r)
        sampled = r["timed_ends"] and 2 * r["timed_ends"] < r["sandboxes"]
        label = f"{name} (N={r['sandboxes']}"
        if sampled:
            label += f", first/last {r['timed_ends']} timed"
        if name == "cnet-batch" and how == "each":
            label += ", between output lines"
        if how == "flat":
            label += ", total/N"
        label += ")"
        style = STYLE.get(family.get(name), "-")
        if sampled:
            ax.plot(xs, ys, "o", ms=3.5, color=colors(k), label=label)
        else:
            ax.plot(xs, ys, style, lw=1.2, color=colors(k), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("sandbox number (set up one after another on one bridge)")
    ax.set_ylabel("setup time of that sandbox, ms (log scale; median over runs)")
    runs = max((r["runs"] for r in rows), default=0)
    ax.set_title(f"Per-sandbox setup latency at each contender's largest N ({runs} runs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path, ""
