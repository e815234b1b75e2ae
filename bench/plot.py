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


def plot(rows: list[dict], path: Path, pub: dict | None = None) -> tuple[Path | None, str]:
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
    if pub:
        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 10), dpi=110, height_ratios=[2.2, 1])
    else:
        fig, ax = plt.subplots(figsize=(11, 6.5), dpi=110)
    colors = plt.get_cmap("tab10")
    top = max(r["sandboxes"] for r in largest.values())
    shown = [o for o in order if o in largest and (largest[o]["sandboxes"] > 1 or top == 1)]
    left_out = [o for o in order if o in largest and o not in shown]
    for k, name in enumerate(shown):
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
        if sampled or len(xs) == 1:
            ax.plot(xs, ys, "o", ms=3.5, color=colors(k), label=label)
        else:
            ax.plot(xs, ys, style, lw=1.2, color=colors(k), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("sandbox number (set up one after another on one bridge)")
    ax.set_ylabel("setup time of that sandbox, ms (log scale; median over runs)")
    title = "Per-sandbox setup latency at each contender's largest N (median over runs)"
    if left_out:
        title += f"\nnot shown, measured at N=1 only: {', '.join(left_out)}"
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if pub:
        publish_panel(ax2, pub)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path, ""


def publish_panel(ax, pub: dict) -> None:
    """Item 2: time of each publish on one sandbox against the ports it already has."""
    by_k: dict[int, list[float]] = {}
    cli: dict[int, list[float]] = {}
    for run in pub["per_run"]:
        for k, how, t in run["samples"]:
            (by_k if how == "api" else cli).setdefault(k, []).append(t)
    ks = sorted(by_k)
    ax.plot(ks, [statistics.median(by_k[k]) * 1000 for k in ks], "-", lw=0.8, color="tab:green",
            label="Cnet.publish(), one process")
    kc = sorted(cli)
    ax.plot(kc, [statistics.median(cli[k]) * 1000 for k in kc], "o", ms=3.5, color="tab:blue",
            label="cnet publish, one process each")
    ax.set_yscale("log")
    ax.set_xlabel("publish number on one cnet sandbox (ports already published + 1)")
    ax.set_ylabel("ms per publish (log)")
    ax.set_title(f"Publishing {pub['milestones'][-1]:,} ports on one sandbox "
                 f"(median over {pub['runs']} run{'s' if pub['runs'] > 1 else ''})", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
