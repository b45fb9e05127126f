"""The Typer application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="gwasm",
    help=(
        "Genome-wide association studies over training examples: which examples change difficulty "
        "when the architecture changes.\n\n"
        "Example: gwasm collect --arch resnet20 --runs 4 && gwasm collect --arch vgg11 --runs 4 "
        "&& gwasm associate resnet20 vgg11 && gwasm manhattan"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
