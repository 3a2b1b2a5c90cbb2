"""The results: a JSON file with the date, the machine and every figure, the same
rendered as Markdown, and the plot. The JSON is the record the documentation quotes
(docs/performance.md embeds its rendering), so a figure in the docs traces to a run."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def times(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.1f}×"


@dataclass
class Target:
    what: str
    goal: str
    measured: str
    ratio: str
    met: bool | None  # None: nothing to judge (a figure only)


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Report:
    out: Path
    mode: str = "full"
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    date: str = field(default_factory=lambda: dt.date.today().isoformat())
    machine: dict = field(default_factory=lambda: machine())
    plot: str | None = None  # file name of the scrape-cost plot, once drawn
    #: 1-minute load average when the run started: figures from a busy machine are
    #: slower, and the reader should see how busy it was.
    load_start: float | None = field(default_factory=lambda: load_average())

    @property
    def stem(self) -> str:
        """``<date>-<arch>-<N>cpu[-mode]``: runs on one day and machine replace each
        other, other machines and modes sit beside them."""
        suffix = "" if self.mode == "full" else f"-{self.mode}"
        return f"{self.date}-{self.machine['arch']}-{self.machine['cores']}cpu{suffix}"

    def table(self, title: str, header: list[str], rows: list[list[str]], note: str = "") -> None:
        t = Table(title, header, rows, note)
        print(render_table(t), flush=True)
        self.tables.append(t)

    def target(self, what: str, goal: str, measured: str, ratio: str = "",
               met: bool | None = None) -> None:
        self.targets.append(Target(what, goal, measured, ratio, met))

    def write(self, seconds: float) -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.md``; returns both paths."""
        self.out.mkdir(parents=True, exist_ok=True)
        data = {"date": self.date, "mode": self.mode, "seconds": round(seconds),
                "load_average": {"start": self.load_start, "end": load_average()},
                "machine": self.machine, "plot": self.plot,
                "targets": [asdict(t) for t in self.targets],
                "tables": [asdict(t) for t in self.tables]}
        js = self.out / f"{self.stem}.json"
        js.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        md = self.out / f"{self.stem}.md"
        md.write_text(render(data))
        return js, md

    @property
    def plot_name(self) -> str:
        return f"{self.stem}-scrape-cost.png"


def render_table(t: Table) -> str:
    lines = [f"### {t.title}", "", "| " + " | ".join(t.header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(t.header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in t.rows]
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines) + "\n"


def describe_machine(m: dict) -> str:
    mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    cpu = f"{m['cpu']}, " if m.get("cpu") else ""
    return (f"{m['system']} {m['arch']}, {cpu}{m['cores']} cores{mem}, "
            f"Python {m['python']}")


def render(data: dict) -> str:
    """The Markdown of one results file (what docs/performance.md embeds)."""
    load = data.get("load_average") or {}
    busy = (f" · load average {load['start']:.1f} at the start, {load['end']:.1f} at the end"
            if load.get("start") is not None and load.get("end") is not None else "")
    parts = [f"Run of {data['date']} · {describe_machine(data['machine'])} · "
             f"{data['mode']} run in {data['seconds']} s{busy}\n"]
    if data["targets"]:
        rows = ["| target | goal | measured | ratio to baseline | met |",
                "|---|---|---|---|---|"]
        rows += [f"| {t['what']} | {t['goal']} | {t['measured']} | {t['ratio']} | "
                 f"{'' if t['met'] is None else ('yes' if t['met'] else '**no**')} |"
                 for t in data["targets"]]
        parts.append("### Targets\n\n" + "\n".join(rows) + "\n")
    parts += [render_table(Table(**t)) for t in data["tables"]]
    return "\n".join(parts)


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


def machine() -> dict:
    """What a reader needs to weigh the figures: CPU model, cores, memory, Python."""
    mem = None
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        mem = round(kib / 1024 / 1024)
    except (OSError, StopIteration, ValueError):
        pass
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"system": platform.system(), "arch": re.sub(r"[^\w.]", "_", platform.machine()),
            "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version()}


def plot(curves: dict, baselines: dict, path: Path, linear: tuple = ()) -> Path | None:
    """Scrape time (and the baseline, where one exists) against size, one panel per
    curve, log-log on one shared scale: a flat line is flat, a linear one has slope 1
    (the dotted line in the curves named in ``linear``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (scripts/bench installs it): no plot", file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.6), squeeze=False,
                             sharey=True)
    top = max([p["seconds"] for pts in curves.values() for p in pts]
              + [b for base in baselines.values() for b in base["seconds"]]) * 1000
    for ax, (name, points) in zip(axes[0], curves.items(), strict=True):
        xs = [max(p["n"], 1) for p in points]  # a backlog of 0 is drawn at 1
        ys = [p["seconds"] * 1000 for p in points]
        ax.plot(xs, ys, marker="o", label="exporter /metrics")
        base = baselines.get(name)
        if base:
            ax.plot(xs, [b * 1000 for b in base["seconds"]], marker="s", linestyle="--",
                    label=base["label"])
        if name in linear:
            ax.plot(xs, [ys[0] * x / xs[0] for x in xs], color="grey", linestyle=":",
                    label="linear from the first point")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1, top * 2)
        ax.set_title(name)
        ax.set_xlabel("n")
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Scrape cost as the work grows (median per point)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
