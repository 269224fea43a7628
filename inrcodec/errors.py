"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class InrcodecError(Exception):
    """A problem with the user's input or request (bad file, bad option), not a bug.

    The message names the file and the problem; the CLI prints it as one line.
    """

    exit_code = 1


class UsageError(InrcodecError):
    """A request that cannot be satisfied as asked (conflicting options, bad value)."""

    exit_code = 2


def one_line(exc: BaseException | str) -> str:
    """`exc`'s message with its whitespace collapsed, because errors are printed as one line
    (library messages often span several); the type name when the message is empty."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
