"""The one exception type a user sees: it becomes a one-line message and exit 2."""


class SpikeflopsError(Exception):
    """Bad input or an impossible request, explained in one line."""
