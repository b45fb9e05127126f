"""Entry point of the `gwasm` console script.

Each command module registers its commands on :data:`gwasm_cli.app.app`. This module runs the
application so that every failure the user can cause ends as one line on stderr and exit code 2:
the library's :class:`~gwas_models.errors.GwasmError`, click's usage errors, and unreadable files.
"""

from __future__ import annotations

import os
import sys

import typer

try:  # recent Typer vendors its own click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from gwas_models.errors import GwasmError
from gwasm_cli import collect  # noqa: F401  (each import registers its commands, in pipeline order)
from gwasm_cli import associate  # noqa: F401
from gwasm_cli import plots  # noqa: F401
from gwasm_cli import fingerprint  # noqa: F401
from gwasm_cli import analyses  # noqa: F401
from gwasm_cli import report  # noqa: F401
from gwasm_cli import demo  # noqa: F401
from gwasm_cli.app import app

USAGE_EXIT = 2
_ABORT = getattr(click_exceptions, "Abort", KeyboardInterrupt)


# Library parameters whose flag is not their name with dashes (``--`` + ``name.replace("_", "-")``).
FLAG_OF_PARAMETER = {
    "n_markers": "--markers",
    "n_splits": "--splits",
    "n_permutations": "--permutations",
    "n_bins": "--bins",
    "output_format": "--format",
    "figure_format": "--format",
    "save_path": "--save",
    "out_prefix": "--out",
    "selections": "--select",
    "options": "--arch-option",
}


def flag_of(parameter: str) -> str:
    """The command-line flag that sets a library parameter."""
    return FLAG_OF_PARAMETER.get(parameter, "--" + parameter.replace("_", "-"))


def error_message(error: GwasmError) -> str:
    """A library error in the command line's words: its parameter, when it names one, as a flag."""
    message = error.message
    if error.parameter is not None and message.startswith(error.parameter):
        message = flag_of(error.parameter) + message[len(error.parameter) :]
    if error.missing_step is not None:
        message += f"; run `gwasm {error.missing_step}` first"
    return " ".join(message.split())


def _fail(message: str, code: int = USAGE_EXIT) -> int:
    print(f"gwasm: error: {message}", file=sys.stderr)
    return code


# Commands that produce results; their command lines go into the results folder's history.
_PRODUCING = {"collect", "import-scores", "associate", "manhattan", "qq", "gallery", "fingerprint", "variance",
              "stability", "correlate", "pca", "sizes"}


def _record(argv: list[str], history_dir: str | os.PathLike | None) -> None:
    from gwas_models.workflows.report import record_history

    if argv and argv[0] in _PRODUCING and "--help" not in argv:
        record_history(argv, history_dir)


def main(argv: list[str] | None = None, history_dir: str | os.PathLike | None = None) -> int:
    """Run `gwasm`; return the exit code (the console script exits with it).

    ``history_dir`` is the results folder whose command history records the command (default
    ``$GWASM_RESULTS``, else ``./gwasm-results``).
    """
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if not args:  # bare `gwasm`: the help page, as `gwasm --help` prints it
            args = ["--help"]
        result = command.main(args=args, prog_name="gwasm", standalone_mode=False)
    except GwasmError as error:
        code = _fail(error_message(error))
    except click_exceptions.UsageError as error:
        code = _fail(error.format_message().replace("\n", " "))
    except (_ABORT, KeyboardInterrupt):
        code = _fail("interrupted", 130)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        code = _fail(f"{error.strerror}: {error.filename}")
    except Exception as error:  # a bug: still one line unless the user asks for the traceback
        if os.environ.get("GWASM_DEBUG"):
            raise
        message = " ".join(str(error).split())
        code = _fail(f"internal error ({type(error).__name__}: {message}); rerun with GWASM_DEBUG=1 for a traceback", 1)
    else:
        code = result if isinstance(result, int) else 0
        if code == 130:  # Typer turns Ctrl-C inside a command into a returned 130
            _fail("interrupted", 130)
        if code == 0:
            _record(argv if argv is not None else sys.argv[1:], history_dir)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
