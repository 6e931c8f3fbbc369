"""The one exception type that means "the user's input is wrong" (CLI exit code 2)."""


class BadInput(Exception):
    """Bad input: the message is one line naming the file, row or field at fault."""
