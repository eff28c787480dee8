"""README's commands, CI and the results section stay consistent."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", README)


def test_readme_has_exactly_two_commands_with_the_cpu_torch_pin():
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        assert "pip install -q torch==2.13.0" in command
        assert "\n" not in command


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_main_job_is_the_command_line_and_scripts_exist():
    assert "-m sklearn_blend fit" in readme_commands()[0]
    assert "--no-deps nlb-tools" in readme_commands()[1]
    for script in ("benchmarks/nlb_mc_maze_small.py", "benchmarks/update_readme.py",
                   "benchmarks/missing_behavior.py", "examples/grid_search_alpha_tau.py",
                   "examples/custom_base.py", "examples/behavior_forms.py",
                   "examples/custom_strategy.py",
                   "benchmarks/cell_identity.py", "examples/cell_types_pipeline.py"):
        assert (ROOT / script).exists()
        assert script in README


def test_results_sections_are_generated_from_the_benchmark_output():
    sections = re.findall(r"<!-- results: (\S+) -->\n(.*?)<!-- /results -->", README, re.DOTALL)
    assert sections, "README lost its results markers"
    for name, text in sections:
        written = ROOT / "benchmarks" / "results" / f"{name}.md"
        assert written.exists(), f"run the benchmark to create {written}"
        assert text.strip() == written.read_text().strip()
