"""README's commands, CI, the documentation pages and the results sections stay consistent."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "benchmarks"))


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", README)


def documented_text():
    """The README and every documentation page, as one text."""
    from update_readme import pages

    return "\n".join(page.read_text() for page in pages())


def test_readme_has_exactly_two_commands_with_the_cpu_torch_pin():
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert "pip install -q torch==2.13.0" in command
        assert "\n" not in command


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_main_job_is_the_command_line_and_scripts_exist():
    assert "-m sklearn_blend fit" in readme_commands()[0]
    assert "--no-deps nlb-tools" in readme_commands()[1]
    text = documented_text()
    for script in ("benchmarks/nlb_mc_maze_small.py", "benchmarks/update_readme.py",
                   "benchmarks/missing_behavior.py", "benchmarks/cell_identity.py",
                   "benchmarks/nlb_nested.py", "benchmarks/crossmodal.py",
                   "benchmarks/neds_nested.py"):
        assert (ROOT / script).exists()
        assert script in text, script


def test_readme_links_point_at_existing_pages():
    for target in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / target).exists(), target


def test_results_sections_are_generated_from_the_benchmark_output():
    from update_readme import pages

    found = 0
    for page in pages():
        sections = re.findall(r"<!-- results: (\S+) -->\n(.*?)<!-- /results -->",
                              page.read_text(), re.DOTALL)
        for name, text in sections:
            written = ROOT / "benchmarks" / "results" / f"{name}.md"
            assert written.exists(), f"run the benchmark to create {written}"
            assert text.strip() == written.read_text().strip(), f"{page}: {name}"
            found += 1
    assert found >= 20, "the pages lost their results markers"
