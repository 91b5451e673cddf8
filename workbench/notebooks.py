"""Run the workbench's parameterised notebooks headless with papermill."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.errors import DataError, DataFileError, WorkbenchError, near_misses, require

#: Where the notebooks live in a checkout (the package sits beside the folder).
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookError(WorkbenchError):
    """A notebook run headless stopped on an error in one of its cells."""


def find_notebook(name: str | os.PathLike[str]) -> Path:
    """Resolve ``00_quickstart``, ``00_quickstart.ipynb`` or a path to a notebook file."""
    path = Path(name)
    candidates = [path, Path("notebooks") / path, NOTEBOOK_DIR / path]
    for cand in list(candidates):
        if cand.suffix != ".ipynb":
            candidates.append(cand.with_name(cand.name + ".ipynb"))
    for cand in candidates:
        if cand.is_file():
            return cand.resolve()
    known = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) if NOTEBOOK_DIR.is_dir() else []
    raise DataFileError(f"no notebook {str(name)!r}; the workbench's notebooks are {known}")


#: Python's spellings, as the notebooks' parameters cells write them (``TRAIN = True``, ``SAMPLE_SIZE = None``).
PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}


def parse_value(text: str) -> Any:
    """Read a ``-p KEY VALUE`` value: JSON when it parses (numbers, true/false, null, lists), Python's
    ``True``/``False``/``None``, else the string."""
    if text in PYTHON_CONSTANTS:
        return PYTHON_CONSTANTS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise a DataError for a parameter the notebook's ``parameters`` cell does not have.

    papermill only warns and runs on with the default, so a typo (``EPOCH``) would pass in CI unnoticed.
    """
    import ast
    papermill = require("papermill", extra="notebooks", purpose="running notebooks headless")
    declared = papermill.inspect_notebook(str(notebook))  # type: ignore[attr-defined]
    known = list(declared)
    unknown = [name for name in parameters if name not in known]
    if unknown:
        raise DataError(f"{notebook.name} has no parameter(s) {unknown}{near_misses(unknown, known)}; "
                        f"its parameters are {known}")
    for name, value in parameters.items():
        # a parameter whose default is a number or a flag takes one (one that defaults to None may be anything)
        try:
            default = ast.literal_eval(str(declared[name]["default"]))
        except (ValueError, SyntaxError):
            continue
        wants = bool if isinstance(default, bool) else (int, float) if isinstance(default, (int, float)) else None
        if wants is not None and (not isinstance(value, wants) or (wants is not bool and isinstance(value, bool))):
            kind = "true or false" if wants is bool else "a number"
            raise DataError(f"{notebook.name}: parameter {name}={value!r} should be {kind} (default {default!r})")


def _resolve_paths(parameters: dict[str, Any]) -> dict[str, Any]:
    """Relative ``*_PATH`` / ``*_DIR`` parameters made absolute from the caller's working directory: the notebook
    runs in ``notebooks/``, where ``DATA_PATH=my.csv`` named a file that is not there."""
    out = dict(parameters)
    for name, value in parameters.items():
        if name.endswith(("_PATH", "_DIR")) and isinstance(value, str) and value and "://" not in value:
            out[name] = str(Path(value).expanduser().resolve())
    return out


def _local_kernel(folder: str) -> dict[str, Any]:
    """Papermill options that start the kernel on Unix sockets in ``folder`` (POSIX; elsewhere: none).

    A headless run has no reason to open TCP ports on the machine, and over TCP ipykernel warns on every run
    that its traffic is unencrypted, which drowned the one line a CI log needs.
    """
    if os.name != "posix":
        return {}
    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class LocalKernelManager(AsyncKernelManager):  # type: ignore[misc]
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(folder, "kernel")

    return {"kernel_manager_class": LocalKernelManager}


def run_notebook(name: str | os.PathLike[str], *, out_dir: str | os.PathLike[str],
                 parameters: dict[str, Any] | None = None, timeout: int = 1200,
                 kernel_name: str = "python3") -> dict[str, Any]:
    """Execute a notebook headless and read back the ``results.json`` it writes.

    Parameters
    ----------
    name : str or path
        A notebook of ``notebooks/`` by name, or a path.
    out_dir : path
        Where the executed notebook, ``results.json`` and the notebook's other
        outputs go; passed to the notebook as ``OUTPUT_DIR``.
    parameters : dict, optional
        Values for the notebook's ``parameters`` cell. ``INTERACTIVE`` is False
        unless given.
    timeout : int
        Seconds any one cell may run.

    Returns
    -------
    dict
        The notebook's results, plus ``executed_notebook`` (the output path).
    """
    papermill = require("papermill", extra="notebooks", purpose="running notebooks headless")
    source = find_notebook(name)
    check_parameters(source, parameters or {})
    out = Path(out_dir).resolve()
    given = (parameters or {}).get("OUTPUT_DIR")
    if given is not None and Path(str(given)).expanduser().resolve() != out:
        # out_dir is where the results are read back from: a second folder would be written to and never read
        raise DataError(f"OUTPUT_DIR={given!r} and out_dir={str(out_dir)!r} disagree; the output folder is out_dir "
                        "(workbench run-notebook: --out DIR), so leave OUTPUT_DIR out")
    out.mkdir(parents=True, exist_ok=True)
    params = {"INTERACTIVE": False, **_resolve_paths(parameters or {}), "OUTPUT_DIR": str(out)}
    executed = out / source.name
    failed = require("papermill.exceptions", extra="notebooks", purpose="running notebooks headless")
    try:
        with tempfile.TemporaryDirectory(prefix="workbench-kernel-") as sockets:
            papermill.execute_notebook(  # type: ignore[attr-defined]
                str(source), str(executed), parameters=params, kernel_name=kernel_name, execution_timeout=timeout,
                cwd=str(source.parent), progress_bar=False, **_local_kernel(sockets),
            )
    except failed.PapermillExecutionError as exc:  # type: ignore[attr-defined]
        # The cell's own error (often a WorkbenchError naming the file or column) is what the user needs.
        raise NotebookError(f"{source.name} stopped in cell {exc.exec_count}: {exc.ename}: {exc.evalue}. "
                            f"The executed notebook, with the traceback, is {executed}") from exc
    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["executed_notebook"] = str(executed)
    return results
