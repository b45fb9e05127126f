"""The pure wing stays pure: statistics, formats, plots and the report import neither torch nor Typer."""

from __future__ import annotations

import subprocess
import sys

PURE_MODULES = (
    "gwas_models.analysis.study",
    "gwas_models.analysis.fingerprint",
    "gwas_models.analysis.difficulty",
    "gwas_models.analysis.capacity",
    "gwas_models.analysis.simulate",
    "gwas_models.formats.store",
    "gwas_models.formats.sumstats",
    "gwas_models.formats.fingerprint_file",
    "gwas_models.plots.manhattan",
    "gwas_models.plots.qq",
    "gwas_models.plots.gallery",
    "gwas_models.report",
    "gwas_models.data",
)


def test_pure_wing_imports_no_torch_and_no_typer():
    code = "import sys\n" + "".join(f"import {m}\n" for m in PURE_MODULES) + "print(sorted(m for m in ('torch', 'typer') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
