"""Copy benchmark result tables into README.md between their markers.

``<!-- results: NAME -->`` ... ``<!-- /results -->`` in README.md is replaced by the contents of
``benchmarks/results/NAME.md``, so README shows exactly what the benchmark wrote.

Run: ``python benchmarks/update_readme.py``
"""

import re
from pathlib import Path

from common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
PATTERN = re.compile(r"(<!-- results: (\S+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()

    def fill(match):
        table = (RESULTS / f"{match.group(2)}.md").read_text()
        return f"{match.group(1)}{table.rstrip()}\n{match.group(4)}"

    new, count = PATTERN.subn(fill, text)
    readme.write_text(new)
    print(f"updated {count} result section(s) in {readme}")


if __name__ == "__main__":
    main()
