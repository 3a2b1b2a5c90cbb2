"""The results: Markdown tables (printed as they are made), the targets summary, the plot."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from dataclasses import dataclass, field
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
class Report:
    out: Path
    sections: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def table(self, title: str, header: list[str], rows: list[list[str]], note: str = "") -> None:
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if note:
            lines += ["", note]
        self.text("\n".join(lines) + "\n")

    def text(self, text: str) -> None:
        print(text, flush=True)
        self.sections.append(text)

    def target(self, what: str, goal: str, measured: str, ratio: str = "",
               met: bool | None = None) -> None:
        self.targets.append(Target(what, goal, measured, ratio, met))

    def write(self, mode: str, seconds: float) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        head = [f"# django-q-exporter benchmarks\n\n{dt.date.today().isoformat()} · {machine()}"
                f" · {mode} run in {seconds:.0f} s\n"]
        if self.targets:
            rows = ["| target | goal | measured | ratio to baseline | met |",
                    "|---|---|---|---|---|"]
            rows += [f"| {t.what} | {t.goal} | {t.measured} | {t.ratio} | "
                     f"{'' if t.met is None else ('yes' if t.met else '**no**')} |"
                     for t in self.targets]
            head.append("### Targets\n\n" + "\n".join(rows) + "\n")
        path = self.out / "results.md"
        path.write_text("\n".join(head + self.sections))
        return path


def machine() -> str:
    mem = ""
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name")) + ", "
    except (OSError, StopIteration):
        pass
    return (f"{platform.system()} {platform.machine()}, {cpu}{os.cpu_count()} cores{mem}, "
            f"Python {platform.python_version()}")


def plot(curves: dict, baselines: dict, out: Path, linear: tuple = ()) -> Path | None:
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
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scrape-cost.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
