"""gwas-models: genome-wide association studies over training examples and trained models.

The library has two wings. The torch wing (:mod:`gwas_models.training`) trains runs and records
per-example difficulty scores; the pure wing (:mod:`gwas_models.analysis`) tests, fingerprints and
analyses score matrices with NumPy, SciPy, statsmodels and scikit-learn only. Between them,
:mod:`gwas_models.formats` holds the file formats; :mod:`gwas_models.plots` draws the figures.
Importing this package does not import torch.
"""

__version__ = "0.1.0"
