"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class InrcodecError(Exception):
    """A problem with the user's input or request (bad file, bad option), not a bug.

    The message names the file and the problem; the CLI prints it as one line.
    """

    exit_code = 1


class UsageError(InrcodecError):
    """A request that cannot be satisfied as asked (conflicting options, bad value)."""

    exit_code = 2
