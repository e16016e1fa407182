"""The one exception type users see: a sentence they can act on, never a traceback."""


class MRNetError(Exception):
    """Bad input, bad weights or a bad request, described in one plain sentence."""
