"""The workflow layer: what each ``gwasm`` command does, as one library call.

The functions here face the run store and the results folder: they find the store and dataset,
load the runs, call the pure statistics (:mod:`gwas_models.analysis`) or the training code
(:mod:`gwas_models.training`), and save what came out. They take paths and the library's own
parameters, never command-line flags, and raise :class:`~gwas_models.errors.GwasmError` for
anything the user can fix. The command line (``gwasm_cli``) parses options, calls one function of
this package, and presents its result.

Modules
-------
collect
    Train replicate runs into the store; list runs; import scores computed elsewhere.
associate
    Association tests between architectures of a store, written as summary statistics.
fingerprint
    Fingerprint evaluation and fitting from a store; identify runs or score files.
analyses
    The paper's difficulty analyses (variance, stability, correlate, pca) and the capacity study.
plots
    Manhattan, QQ and gallery figures of a summary-statistics file.
report
    The HTML report of a results folder.
"""
