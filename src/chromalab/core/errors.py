"""The one exception type for mistakes a user can fix (bad params, bad files, missing outputs).

Stage scripts and the CLI turn it into a one-line message and exit code 2; every other exception
is a bug and keeps its traceback.
"""

import functools
import sys


class UserError(Exception):
    """A problem with the user's input, named precisely enough to fix without a traceback."""


EXIT_USER_ERROR = 2


def first_line(err: BaseException) -> str:
    """An exception's message in one line for a one-line error: its first non-empty line, or the
    exception's type when it has no message."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def exit_on_user_error(main):
    """Decorate a script's main(): a UserError becomes `error: ...` on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return wrapper
