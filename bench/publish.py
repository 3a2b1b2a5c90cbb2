"""Put one results file into docs/performance.md, so the figures there are the
figures a run wrote.

    python -m bench.publish bench/results/<stem>.json

Replaces what lies between the ``<!-- results: PATH -->`` and ``<!-- results:end -->``
markers with the file's rendering (bench.report.render) and names the file in the
opening marker. A test checks that the block still matches the file it names.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import render  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
BLOCK = re.compile(r"<!-- results: (?P<path>\S+) -->\n(?P<body>.*?)<!-- results:end -->",
                   re.S)


def block(path: str, data: dict) -> str:
    """The embedded rendering; the plot, when the run drew one, is linked from the
    docs folder."""
    body = render(data)
    if data.get("plot"):
        plot = (Path(path).parent / data["plot"]).as_posix()
        body += f"\n![Scrape cost as the work grows](../{plot})\n"
    return f"<!-- results: {path} -->\n{body}\n<!-- results:end -->"


def embedded(doc: str) -> tuple[str, str] | None:
    """(results path relative to the repository, embedded text) of the doc's block."""
    m = BLOCK.search(doc)
    return (m.group("path"), m.group(0)) if m else None


def publish(results: Path, doc: Path = DOC) -> None:
    rel = results.resolve().relative_to(ROOT).as_posix()
    data = json.loads(results.read_text())
    text = doc.read_text()
    if not BLOCK.search(text):
        raise SystemExit(f"{doc}: no <!-- results: ... --> ... <!-- results:end --> block")
    doc.write_text(BLOCK.sub(lambda _: block(rel, data), text, count=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a results .json written by scripts/bench")
    a = p.parse_args(argv)
    publish(a.results)
    print(f"{DOC.relative_to(ROOT)} now shows {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
