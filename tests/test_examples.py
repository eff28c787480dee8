"""Every gallery example runs in its quick form (``SKLEARN_BLEND_QUICK=1``: two epochs, fewer
trials), as the documentation build runs it, and draws its figure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_the_gallery_has_the_examples_it_promises():
    names = {path.stem for path in EXAMPLES}
    assert {"grid_search_alpha_tau", "nlb_evaluation_and_submission", "custom_strategy",
            "custom_base", "neds_encode_decode", "crossmodal_simulated_lfp",
            "cell_types_pipeline"} <= names
    for path in EXAMPLES:
        lines = path.read_text().splitlines()
        assert lines[0] == '"""' and set(lines[2]) == {"="}, f"{path.name}: no gallery title"
        assert "SKLEARN_BLEND_QUICK" in path.read_text(), f"{path.name}: no quick form"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_in_its_quick_form(path, tmp_path):
    env = dict(os.environ, SKLEARN_BLEND_QUICK="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    script = ("import runpy, sys, matplotlib.pyplot as plt\n"
              f"sys.argv = [{str(path)!r}]\n"
              f"runpy.run_path({str(path)!r}, run_name='__main__')\n"
              "assert plt.get_fignums(), 'the example drew no figure'\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
