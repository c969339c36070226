"""benchmarks/accelerator.py --quick: the smoke run writes every section of its report (no timing asserted).

It runs in a subprocess (as on a GPU node), with PyTorch hidden by a stand-in package that fails to
import, so the report must say that the PyTorch peer was skipped rather than stop.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jena_rnn.config import LECTURE_MODELS

ROOT = Path(__file__).parent.parent
QUICK_MODELS = ("gru", "lstm", "mlp")  # what --quick trains (accelerator.QUICK_MODELS)


def _section(text: str, number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, re.M | re.S)
    assert match, f"section {number} missing from:\n{text}"
    return match.group(0)


@pytest.mark.slow
def test_quick_run_writes_every_section(tmp_path):
    hidden = tmp_path / "hidden" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("torch hidden by the test")\n')
    out = tmp_path / "ACCELERATOR.md"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "hidden"), str(ROOT)]),
               JENA_RNN_CPU_DEVICES="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accelerator.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Accelerator benchmark") and "--quick" in text.splitlines()[0]
    assert "jax " in text and "load average before" in text  # versions and machine in the header

    cells = _section(text, 1)
    for label in ("simple_rnn", "lstm", "gru reset-after", "gru reset-before"):
        row = re.search(rf"^\| {label} \| (\S+) \| (\S+) \|$", cells, re.M)
        assert row, (label, cells)
        assert all(float(e) < 1e-4 for e in row.groups()), row.group(0)  # float32 against float64, T=16
    assert "lstm (cuDNN): skipped" in cells or "| lstm (cuDNN) |" in cells

    policy = _section(text, 2)
    for name, (model, *_) in LECTURE_MODELS.items():
        if model.kind == "naive":
            assert f"| {name} |" not in policy
            continue
        row = re.search(rf"^\| {name} \| (.*)$", policy, re.M)
        assert row, (name, policy)
        if name in QUICK_MODELS:
            assert re.match(r"[\d.]+ \| ", row.group(1)) and "(highest)" in row.group(1), row.group(0)
    assert re.search(r"^\| lstm scan \| [\d.]+ \| 1\.00x \|$", policy, re.M), policy

    peers = _section(text, 3)
    assert "pytorch: skipped (torch hidden by the test)" in peers
    for name in ("gru", "lstm"):
        assert re.search(rf"^\| {name} \| [\d.]+ \| flax nn.RNN \| [\d.]+ \| [\d.]+x \|$", peers, re.M) \
            or "flax: skipped" in peers, peers

    sweeps = _section(text, 4)
    for k in (1, 2):
        assert re.search(rf"^\| {k} \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+x \|$", sweeps, re.M), sweeps

    epoch = _section(text, 5)
    assert re.search(r"^\| [\d.]+ \| [\d.]+ \|$", epoch, re.M), epoch
