"""Copy benchmark result tables into README.md and the documentation pages between markers.

``<!-- results: NAME -->`` ... ``<!-- /results -->`` in README.md or in any Markdown page under
``docs/`` is replaced by the contents of ``benchmarks/results/NAME.md``, so the README and the
benchmark pages show exactly what the benchmark wrote (``tests/test_readme.py`` checks it).

Run: ``python benchmarks/update_readme.py``
"""

import re
from pathlib import Path

from common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
PATTERN = re.compile(r"(<!-- results: (\S+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def pages():
    """README.md and every Markdown page of the documentation (build outputs left out)."""
    docs = sorted(path for path in (ROOT / "docs").rglob("*.md")
                  if "_build" not in path.parts and "auto_examples" not in path.parts)
    return [ROOT / "README.md", *docs]


def main():
    total = 0
    for page in pages():
        text = page.read_text()

        def fill(match):
            table = (RESULTS / f"{match.group(2)}.md").read_text()
            return f"{match.group(1)}{table.rstrip()}\n{match.group(4)}"

        new, count = PATTERN.subn(fill, text)
        if new != text:
            page.write_text(new)
        total += count
    print(f"updated {total} result section(s) in README.md and docs/")


if __name__ == "__main__":
    main()
