"""Notebook panels over :mod:`workbench` objects. Each panel holds view state only and calls the core."""

from widgets.browser import LabelBrowser
from widgets.panels import ActiveLearningPanel, FineTunePanel, MetricsPanel, QualityPanel, TagQualityPanel, Workbench
from widgets.sentence import SentenceView

__all__ = ["ActiveLearningPanel", "FineTunePanel", "LabelBrowser", "MetricsPanel", "QualityPanel", "SentenceView",
           "TagQualityPanel", "Workbench"]
