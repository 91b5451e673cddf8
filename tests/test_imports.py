"""The public API, and the rule that the core never imports a UI library or torch."""

from __future__ import annotations

import json
import subprocess
import sys


def test_core_import_pulls_no_ui_or_torch():
    code = (
        "import json, sys, workbench, workbench.data, workbench.store, workbench.sample, workbench.cli, "
        "workbench.models, workbench.export\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ipywidgets', 'anywidget', 'plotly', 'torch', 'transformers', 'IPython'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_api():
    import workbench

    assert set(workbench.__all__) == {"Filters", "LabelStore", "WorkbenchError", "__version__", "load_dataset"}
    for name in workbench.__all__:
        assert hasattr(workbench, name)
