"""Notebook panels over :mod:`workbench` objects. Each panel holds view state only and calls the core."""

from widgets.browser import LabelBrowser

__all__ = ["LabelBrowser"]
