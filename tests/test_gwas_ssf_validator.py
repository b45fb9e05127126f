"""GWAS-SSF files against the GWAS Catalog's own validator (``gwas-ssf`` of gwas-sumstats-tools).

The validator checks, in order, the extension, the column order, the chromosomes (every one of
1-22 present), the number of rows, then every value (pandera). Three rules cannot apply to
training examples, and the tests assert that they, and only they, fail, so that any other failure
is caught:

* chromosomes 1-22 all present: a chromosome is a class (a dataset of 10 classes has 1-10);
* ``effect_allele``/``other_allele`` are nucleotide sequences: here they are architectures;
* ``effect_allele_frequency`` is a number: training examples have no allele frequency (NA).

Since the chromosome rule stops the validator before it reads any value, the values are checked
on a dataset of 22 classes. The minimum row count (100,000 by default) is a setting, lowered here.

gwas-sumstats-tools pins pandas 1.5.3 and typer < 0.8 (this package needs pandas >= 2 and typer
>= 0.12) and needs click < 8.2, so it cannot share this package's environment: install it in its
own (``python -m venv V && V/bin/pip install gwas-sumstats-tools 'numpy<2' 'click<8.2' six``) and
put its ``gwas-ssf`` on the PATH or in ``$GWAS_SSF``. Without it these tests are skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_models.analysis.simulate import simulate_scores
from gwas_models.analysis.study import associate
from gwas_models.formats.sumstats import write_sumstats

GWAS_SSF = os.environ.get("GWAS_SSF") or shutil.which("gwas-ssf")
pytestmark = pytest.mark.skipif(GWAS_SSF is None, reason="gwas-ssf (gwas-sumstats-tools) not installed; see the module docstring")

#: The rules of the validator that cannot apply to training examples: (column, check).
INAPPLICABLE_VALUE_RULES = {
    ("effect_allele", "Must be nucleotide sequence"),
    ("other_allele", "Must be nucleotide sequence"),
    ("effect_allele_frequency", "not_nullable"),
}


def gwas_ssf(*args: str | Path) -> tuple[int, str]:
    """Run ``gwas-ssf``; its exit code and its output (rich text, kept on long lines)."""
    environment = dict(os.environ, COLUMNS="250", NO_COLOR="1")
    done = subprocess.run([GWAS_SSF, *map(str, args)], capture_output=True, text=True, timeout=300, env=environment)
    return done.returncode, done.stdout + done.stderr


def ssf_file(directory: Path, n_classes: int) -> Path:
    """The GWAS-SSF file of one score, 20 vs 20 runs, with one p far below 1e-308 (example 3)."""
    rng = np.random.default_rng(n_classes)
    matrices = simulate_scores(
        rng, ("loss",), 20 * n_classes, {"resnet20": 20, "vgg11-16": 20}, effect_examples=[3], effect_size=1e12, n_classes=n_classes
    )
    table = associate(matrices, ["resnet20", "vgg11-16"], normalize="none").pairs[0].sumstats
    paths = write_sumstats(table, directory / f"c{n_classes}", "resnet20", "vgg11-16", gwas_ssf_scores=["loss"])
    return paths.gwas_ssf[0]


def test_only_the_chromosome_rule_stops_a_dataset_of_ten_classes(tmp_path):
    code, output = gwas_ssf("validate", ssf_file(tmp_path, 10))
    assert code == 1
    assert "Validating extension...\n--> Ok" in output and "Validating column order...\n--> Ok" in output
    missing = ", ".join(f"'{c}'" for c in range(11, 23))
    assert f"Chromosome column missing values: [{missing}]" in output
    assert "Primary reason for validation failure: missing_chromsomes" in output


def test_every_value_rule_passes_but_those_that_cannot_apply(tmp_path):
    data = ssf_file(tmp_path, 22)
    code, output = gwas_ssf("validate", data, "--min-rows", "1", "--errors-out")
    assert code == 1
    for step in ("extension", "column order", "chromosomes", "minimum row count"):
        assert f"Validating {'the ' if step == 'chromosomes' else ''}{step}...\n" in output
    assert output.count("--> Ok") == 4, output  # extension, column order, chromosomes, row count
    errors = pd.read_csv(f"{data}.err.csv.gz")
    failed = set(zip(errors["column"], errors["check"]))
    assert failed == INAPPLICABLE_VALUE_RULES, errors.drop_duplicates(["column", "check"]).to_string()
    table = pd.read_csv(data, sep="\t", dtype=str, keep_default_na=False)
    assert len(errors) == 3 * len(table)  # every row, and nothing else
    # p far below 1e-308 passed the p-value rules as written (mantissa > 0, in [0, 1]).
    tiny = table.loc[table["example_id"] == "3", "p_value"].iloc[0]
    assert int(tiny.split("e-")[1]) > 308 and (table["p_value"] != "0").all()


def test_the_metadata_follows_the_catalog_schema(tmp_path):
    data = ssf_file(tmp_path, 10)
    code, output = gwas_ssf("read", data, "--get-all-metadata")
    assert code == 0 and "validation error" not in output and "ERROR" not in output, output
    assert f"data_file_md5sum: {hashlib.md5(data.read_bytes()).hexdigest()}" in output
    assert "date_metadata_last_modified: 20" in output and "sample_size: 40" in output
