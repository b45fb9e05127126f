"""The Typer application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="gwasm",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from gwas_models import __version__

        typer.echo(f"gwasm {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version of gwas-models and exit."
    ),
) -> None:
    """Genome-wide association studies over training examples: which examples change difficulty
    when the architecture changes.

    Example: gwasm collect --arch resnet20 --runs 4 && gwasm collect --arch vgg11 --runs 4 && gwasm
    associate resnet20 vgg11 && gwasm manhattan
    """
