"""Exceptions shared by the core and every front end."""

from __future__ import annotations


class FocusQAError(ValueError):
    """Bad input to FocusQA: the message names the parameter and what was expected."""


class ImageError(FocusQAError):
    """An image cannot be assessed (wrong shape, dtype, NaN, too small, RGB, ...)."""


class ModelCardError(FocusQAError):
    """A model or its card is missing, unreadable or inconsistent."""


class Cancelled(RuntimeError):  # noqa: N818 - reads better at call sites
    """Raised inside long work when the caller's cancel callback returned True."""
