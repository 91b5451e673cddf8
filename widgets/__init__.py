"""Notebook panels over :mod:`workbench` objects. Each panel holds view state only and calls the core."""

from widgets.browser import LabelBrowser
from widgets.panels import FineTunePanel, MetricsPanel, QualityPanel, Workbench

__all__ = ["FineTunePanel", "LabelBrowser", "MetricsPanel", "QualityPanel", "Workbench"]
