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


def _fail(message: str, code: int = USAGE_EXIT) -> int:
    print(f"gwasm: error: {message}", file=sys.stderr)
    return code


# Commands that produce results; their command lines go into the results folder's history.
_PRODUCING = {"collect", "import-scores", "associate", "manhattan", "qq", "gallery", "fingerprint", "variance",
              "stability", "correlate", "pca", "sizes"}


def _record(argv: list[str]) -> None:
    from gwas_models.report import record_command

    if argv and argv[0] in _PRODUCING and "--help" not in argv:
        try:
            record_command(os.environ.get("GWASM_RESULTS", "gwasm-results"), list(argv))
        except OSError:
            pass  # the history is a convenience; never fail a finished command over it


def main(argv: list[str] | None = None) -> int:
    """Run `gwasm`; return the exit code (the console script exits with it)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="gwasm", standalone_mode=False)
    except GwasmError as error:
        code = _fail(" ".join(str(error).split()))
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
            _record(argv if argv is not None else sys.argv[1:])
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
