"""The `gwasm` command line: a thin Typer front end over :mod:`gwas_models`."""
