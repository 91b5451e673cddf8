"""label-workbench core: load, store, score, train and measure labelled text datasets.

Importing this package never imports a UI library (ipywidgets, anywidget, plotly)
or torch; those load only when a function that needs them is called.
"""

from workbench.data import load_dataset
from workbench.errors import WorkbenchError
from workbench.store import Filters, LabelStore

__version__ = "0.1.0"

__all__ = ["Filters", "LabelStore", "WorkbenchError", "__version__", "load_dataset"]
