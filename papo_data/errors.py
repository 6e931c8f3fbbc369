"""The one exception type that means "the user's input is wrong" (CLI exit code 2)."""


class BadInput(ValueError):
    """Bad input: the message is one line naming the file, row or field at fault. A ValueError,
    so `except ValueError` in a notebook catches it as it catches numpy's and scipy's."""
