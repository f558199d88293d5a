"""What coexist is, for reports and --version."""

from __future__ import annotations


def version() -> str:
    """The installed coexist's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("coexist")
    except PackageNotFoundError:   # run from a checkout that was never installed
        return "unknown (not installed)"
