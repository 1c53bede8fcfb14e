"""Import a python model's `_target_` and, when that fails, say which of four things went wrong.

`_target_: my_models.Answerer` can fail because
* the module is not there (`my_models.py` is not in the project directory, or the name is misspelt),
* the module is there but *it* imports something that is not installed (a dependency),
* the module does not parse (a SyntaxError, reported with file:line and the offending line),
* the module imports but has no `Answerer` (an attribute missing; the names it does define are listed),
* or the module raises something else while it is imported (reported with the line that raised).
Each gets its own hint. Hydra's `get_object` lumps them together ("Are you sure that module 'x' is
installed?") and logs the error a second time, so it is not used here.
"""
from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.errors import did_you_mean


class ImportFailure(Exception):
    """Why `_target_` could not be imported or built: `kind` (module_not_found | dependency_missing |
    syntax_error | attribute_missing | import_raised | bad_target | bad_params | constructor_raised), what
    happened, and the hint that fits it."""

    def __init__(self, kind: str, problem: str, hint: str):
        super().__init__(kind, problem, hint)
        self.kind, self.problem, self.hint = kind, problem, hint

    def __str__(self) -> str:
        return f"{self.problem}\n  hint: {self.hint}"


def _user_frame(tb) -> str | None:
    """file:line of the innermost frame outside Python's import machinery (where the user's code failed)."""
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<frozen")
              and "/importlib/" not in f.filename.replace("\\", "/")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _is_missing(error: ModuleNotFoundError, module: str) -> bool:
    """The import failed because `module` itself (or a parent package of it) does not exist."""
    return bool(error.name) and (module == error.name or module.startswith(error.name + "."))


def _project_modules(project_dir: Path) -> list[str]:
    return sorted({p.stem for p in project_dir.glob("*.py")} | {p.parent.name for p in project_dir.glob("*/__init__.py")})


def _import_module(module: str) -> ModuleType | None:
    """The module, or None when it does not exist; any other failure is an ImportFailure."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if _is_missing(e, module):
            return None
        where = _user_frame(e.__traceback__)
        raise ImportFailure(
            "dependency_missing",
            f"module '{module}' was found, but it imports '{e.name}', which is not installed "
            f"(ModuleNotFoundError: {e}{f', at {where}' if where else ''})",
            f"install the package that provides '{e.name}' into the environment Flywheel runs in "
            f"({sys.executable} -m pip install ...), or remove that import") from e
    except SyntaxError as e:
        line = (e.text or "").rstrip("\n")
        pointer = f"\n    {line}" if line.strip() else ""
        raise ImportFailure(
            "syntax_error",
            f"module '{module}' does not parse: SyntaxError: {e.msg} at {e.filename}:{e.lineno}{pointer}",
            f"fix the syntax at {e.filename}:{e.lineno}; `python -m py_compile {e.filename}` checks it") from e
    except Exception as e:  # the module's own top-level code raised
        where = _user_frame(e.__traceback__)
        raise ImportFailure(
            "import_raised",
            f"importing module '{module}' raised {type(e).__name__}: {e}" + (f" at {where}" if where else ""),
            f"the module's top-level code runs when it is imported; run `python -c 'import {module}'` in the "
            "project directory to see the whole traceback") from e


def _defined_names(module: ModuleType) -> list[str]:
    return sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                  and getattr(v, "__module__", None) == module.__name__)


def load_object(target: str, project_dir: Path) -> Any:
    """The object `_target_` names (`pkg.module.Name`, attributes allowed: `module.Class.factory`).

    The project directory is searched first, so a project's own model code needs no install."""
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    parts = target.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ImportFailure("bad_target", f"'{target}' is not a dotted path to a class or function",
                            "write it as module.Name, e.g. my_models.Answerer for class Answerer in "
                            "my_models.py in the project directory")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        module = _import_module(module_name)
        if module is None:
            continue
        obj: Any = module
        for depth, attr in enumerate(parts[split:]):
            if not hasattr(obj, attr):
                owner = ".".join(parts[:split + depth])
                where = getattr(module, "__file__", None) or module_name
                names = _defined_names(obj) if isinstance(obj, ModuleType) else [
                    n for n in dir(obj) if not n.startswith("_")]
                raise ImportFailure(
                    "attribute_missing", f"'{owner}' ({where}) has no attribute '{attr}'",
                    f"{did_you_mean(attr, names)}; `_target_` names a class or a function defined there")
            obj = getattr(obj, attr)
        return obj
    first = parts[0]
    local = _project_modules(project_dir)
    raise ImportFailure(
        "module_not_found",
        f"no module named '{first}': not in the project directory {project_dir} and not installed",
        f"put {first}.py (or a package {first}/) in {project_dir}, install it, or fix `_target_`"
        + (f"; modules in the project directory: {', '.join(local)}"
           f"{' (did you mean ' + repr(close) + '?)' if (close := _closest(first, local)) else ''}" if local else ""))


def _closest(name: str, names: list[str]) -> str | None:
    import difflib
    found = difflib.get_close_matches(name, names, n=1)
    return found[0] if found else None


def call_factory(factory: Any, params: dict) -> Any:
    """`factory(**params)`; a TypeError about the parameters or any exception the constructor raises becomes an
    ImportFailure-like message (kind `bad_params` / `constructor_raised`)."""
    try:
        return factory(**params)
    except TypeError as e:
        # Binding the arguments fails in this frame alone; a TypeError from deeper is the constructor's own.
        if len(traceback.extract_tb(e.__traceback__)) <= 1:
            raise ImportFailure("bad_params", f"{_name(factory)}{_signature(factory)} does not accept params "
                                f"{sorted(params)}: {e}", "make `params:` match the signature") from e
        where = _user_frame(e.__traceback__)
        raise ImportFailure("constructor_raised", f"{_name(factory)}(**params) raised TypeError: {e} at {where}",
                            "the constructor failed; check its code and `params:`") from e
    except Exception as e:
        where = _user_frame(e.__traceback__)
        raise ImportFailure("constructor_raised", f"{_name(factory)}(**params) raised {type(e).__name__}: {e}"
                            + (f" at {where}" if where else ""), "the constructor failed; check its code and "
                            "`params:`") from e


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
