"""Draw the benchmark results as PNG files for the documentation.

    python benchmarks/plot.py                      # every benchmarks/results/*.json except *-quick
    python benchmarks/plot.py benchmarks/results/fanout-uvicorn-memory.json --out /tmp/plots
    python benchmarks/plot.py --rst                # the same figures as reStructuredText tables

One PNG per results file, named after it, in ``docs/_static/benchmarks/`` by default: fan-out results show
deliveries/s, server CPU per delivery and p99 latency against the number of clients (log scales); connect
results show connections/s and memory per idle connection.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR.parent / "docs" / "_static" / "benchmarks"
COLORS = {"channels": "#d62728", "websockets": "#7f7f7f", "hypergen": "#1f77b4", "channelbox": "#ff7f0e"}
STYLES = {"redis": "-", "pubsub": "--"}


def human(value: float, _pos: object = None) -> str:
    """1500 -> 1.5k, 2000000 -> 2M, 0.25 -> 0.25."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


def color(variant: str) -> str:
    return COLORS.get(variant.split("-")[0], "#2ca02c")


def good_runs(data: dict) -> list[dict]:
    return [r for r in data["runs"] if "error" not in r]


def subtitle(data: dict) -> str:
    m = data["machine"]
    p = data["params"]
    where = f"{m['cpu_count']} cores, {m['cpu_model']}, Python {m['python']}"
    what = {"fanout": f"{p.get('server')} / {p.get('layer')} layer, {p.get('messages')} messages",
            "redis_fanout": f"2 x {p.get('server')} + redis, {p.get('messages')} messages, "
                            f"publish via {p.get('publish')}",
            "connect": f"{p.get('server')} / {p.get('layer')} layer, {p.get('concurrency')} handshakes in flight"}
    return f"{what.get(data['benchmark'], '')}\n{where}; {m['date'][:10]}"


def plot_metrics(data: dict, metrics: list[tuple[str, str, bool]], path: Path) -> None:
    """One panel per metric; lines against N when there are several N, grouped bars otherwise."""
    runs = good_runs(data)
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    ns = sorted({r["clients"] for r in runs})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2), squeeze=False)
    for ax, (key, label, log_y) in zip(axes[0], metrics):
        if len(ns) > 1:
            for v in variants:
                pts = sorted((r["clients"], r[key]) for r in runs if r["variant"] == v and r.get(key) is not None)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=v, color=color(v),
                            linestyle=STYLES.get(v.split("-")[-1], "-"))
            ax.set_xscale("log")
            ax.set_xticks(ns, [f"{n:,}" for n in ns])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("clients")
        else:
            vals = [next((r.get(key) for r in runs if r["variant"] == v), None) or 0 for v in variants]
            bars = ax.bar(range(len(variants)), vals, color=[color(v) for v in variants])
            ax.set_xticks(range(len(variants)), variants, rotation=20, ha="right", fontsize=8)
            ax.bar_label(bars, labels=[human(v) for v in vals], fontsize=7)
            ax.set_xlabel(f"{ns[0]:,} clients" if ns else "")
        if log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(human))
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    if len(ns) > 1:
        axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{data['name']}: {subtitle(data)}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ours(data: object) -> bool:
    """Whether ``data`` was written by fanout.py, redis_fanout.py or connect.py (other files are skipped)."""
    return (isinstance(data, dict) and data.get("benchmark") in ("fanout", "redis_fanout", "connect")
            and isinstance(data.get("runs"), list))


def plot_file(src: Path, out_dir: Path) -> Path | None:
    data = json.loads(src.read_text())
    if not ours(data) or not good_runs(data):
        return None
    dest = out_dir / f"{src.stem}.png"
    if data["benchmark"] in ("fanout", "redis_fanout"):
        plot_metrics(data, [("deliveries_per_s", "deliveries / s (higher is better)", True),
                            ("cpu_us_per_delivery", "server CPU µs / delivery (lower is better)", True),
                            ("p99_ms", "p99 latency, ms (lower is better)", True)], dest)
    elif data["benchmark"] == "connect":
        plot_metrics(data, [("connections_per_s", "connections / s (higher is better)", False),
                            ("kb_per_connection", "KB RSS / idle connection (lower is better)", False)], dest)
    else:
        return None
    return dest


def rst_table(data: dict) -> str:
    """The figures of one results file as an RST ``list-table`` (for docs/benchmarks.rst)."""
    runs = good_runs(data)
    if data["benchmark"] == "connect":
        cols = [("clients", "K", "{:,}"), ("variant", "variant", "{}"), ("connections_per_s", "conn/s", "{:,.0f}"),
                ("cpu_us_per_connection", "server CPU µs/conn", "{:,.0f}"), ("kb_per_connection", "KB/conn", "{:.1f}"),
                ("failed", "failed", "{:,}")]
    else:
        cols = [("clients", "clients", "{:,}"), ("variant", "variant", "{}"), ("sent", "sent", "{:,}"),
                ("loss_pct", "loss %", "{:.2f}"), ("p50_ms", "p50 ms", "{:,.1f}"), ("p99_ms", "p99 ms", "{:,.1f}"),
                ("deliveries_per_s", "deliveries/s", "{:,.0f}"), ("cpu_us_per_delivery", "server CPU µs/delivery",
                                                                 "{:,.1f}")]
        if any(r.get("redis_cpu_us_per_delivery") is not None for r in runs):
            cols.append(("redis_cpu_us_per_delivery", "redis CPU µs/delivery", "{:.1f}"))
    lines = [".. list-table::", "   :header-rows: 1", ""]
    lines.append("   * - " + "\n     - ".join(label for _, label, _ in cols))
    for r in runs:
        cells = ["-" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in cols]
        lines.append("   * - " + "\n     - ".join(cells))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="results JSON files (default: benchmarks/results/*.json)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--rst", action="store_true", help="print the figures as RST tables instead of plotting")
    args = ap.parse_args()
    files = args.files or sorted(p for p in (BENCH_DIR / "results").glob("*.json") if not p.stem.endswith("-quick"))
    if args.rst:
        for src in files:
            data = json.loads(src.read_text())
            if not ours(data):
                continue
            print(f"{src.name}: {data['command']}\n\n{rst_table(data)}\n")
        return
    for src in files:
        dest = plot_file(src, args.out)
        print(f"{src} -> {dest}" if dest else f"{src}: nothing to plot")


if __name__ == "__main__":
    main()
