"""A zygote for the tests' CLI calls: `python -m engine ARGS` in a fresh process, without paying for the
interpreter and the heavy third-party imports (DuckDB, Arrow, numpy, scipy.stats, Hydra, sqlglot and its DuckDB
dialect, jsonschema, rich) each time.

The test process starts this script once (tests/conftest.py::run_cli). It imports those libraries, then serves
requests on stdin, one JSON line each: {"args", "cwd", "env", "stdout", "stderr"}. For each it forks a child
that becomes `python -m engine ARGS` (cwd, environment, sys.argv, sys.path[0] and file descriptors 0/1/2 as a
subprocess would have them) and answers two lines: {"pid": ...} at once (so the caller can kill it on a timeout) and {"code": ...}
when it has exited (negative: killed by that signal, as subprocess reports it), with the child's CPU
seconds {"cpu": ...} (what `FLYWHEEL_TEST_CLI_LOG` records, tests/conftest.py).

The zygote never opens a database or starts a thread pool, so a child starts from a clean state: nothing of
DuckDB's instance cache or Arrow's threads is inherited. Before each fork the zygote freezes its objects out of the
garbage collector's reach (gc.freeze), so a child's collections and its exit do not walk the inherited heap.

The engine's own modules are imported here too (`preload_engine`: ~0.1 s of every call), all but those that
import polars (its thread pool). They run nothing when imported but build the two rich consoles of
engine/console.py, which read the environment (the width, colour) and the streams; the child builds those again
from its own environment and rebinds every module's reference to them (`fresh_consoles`).
"""
from __future__ import annotations

import json
import os
import sys

# Imported once here, inherited by every child (the engine's own modules too: preload_engine).
import duckdb  # noqa: F401
import hydra  # noqa: F401
import hydra.utils  # noqa: F401
import jsonschema  # noqa: F401
import numpy  # noqa: F401
import numpy.ma  # noqa: F401
import omegaconf  # noqa: F401
import pyarrow  # noqa: F401
import pyarrow.compute  # noqa: F401
import rich._emoji_codes  # noqa: F401
import rich.ansi  # noqa: F401
import rich.console  # noqa: F401
import rich.progress  # noqa: F401
import rich.table  # noqa: F401
import scipy.stats  # noqa: F401  (~0.6 s of every `flywheel monitor`: its p-values, engine/monitor/pvalues.py)
import sqlglot  # noqa: F401
import sqlglot.generators.duckdb  # noqa: F401  (0.15 s, imported by nearly every command)
import sqlglot.parsers.duckdb  # noqa: F401
import subprocess  # noqa: F401
import xml.etree.ElementTree  # noqa: F401
import yaml  # noqa: F401

# Not polars: importing it starts its thread pool, which a forked child would inherit without its threads.

REPLIES = sys.stdout.fileno()

# Engine modules not imported ahead, nor what imports them when it is imported: polars (its thread pool, which a
# forked child would inherit without its threads), and __main__ (it runs the CLI).
NOT_PRELOADED = ("polars", "engine.__main__", "engine.demo_models", "engine._launcher")


def _imported_when_loaded(source: str) -> set[str]:
    """Modules a module's source imports when it is imported (its top-level statements, not its functions)."""
    import ast

    names: set[str] = set()
    pending = list(ast.parse(source).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        pending.extend(ast.iter_child_nodes(node))
    return names


def preload_engine() -> None:
    """Import every engine module but those that would import NOT_PRELOADED, so that a child does not."""
    import importlib
    import pkgutil

    import engine

    imports = {info.name: _imported_when_loaded(open(info.module_finder.find_spec(info.name).origin,
                                                     encoding="utf-8").read())
               for info in pkgutil.walk_packages(engine.__path__, "engine.")}

    def excluded(name: str) -> bool:
        return any(name == x or name.startswith(x + ".") for x in NOT_PRELOADED)

    skipped = {name for name in imports if excluded(name)}
    while True:  # what imports a skipped module is skipped too
        more = {name for name, used in imports.items() if name not in skipped
                and any(excluded(u) or u in skipped for u in used)}
        if not more:
            break
        skipped |= more
    for name in sorted(set(imports) - skipped):
        importlib.import_module(name)
    assert "polars" not in sys.modules, "a preloaded engine module imported polars (tests/cli_zygote.py)"


def fresh_consoles() -> None:
    """In the child: engine/console.py's consoles built again from this process's environment and streams, and
    every engine module's reference to the zygote's ones pointed at them."""
    import importlib

    module = sys.modules.get("engine.console")
    if module is None:
        return
    old = {id(module.console): "console", id(module.err_console): "err_console"}
    importlib.reload(module)
    for name, mod in list(sys.modules.items()):
        if name.startswith("engine.") and mod is not module:
            for attr, value in list(vars(mod).items()):
                if id(value) in old:
                    setattr(mod, attr, getattr(module, old[id(value)]))


def reply(message: dict) -> None:
    os.write(REPLIES, (json.dumps(message) + "\n").encode())  # unbuffered: a child inherits no pending bytes


def become_cli(request: dict) -> None:
    """In the forked child: become `python -m engine ARGS` and exit with its code."""
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    stdin = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd, target in ((stdin, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.path[0] = os.getcwd()  # as `python -m` sets it
    fresh_consoles()
    main = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine", "__main__.py")
    sys.argv = [main, *request["args"]]
    try:
        runpy.run_module("engine", run_name="__main__", alter_sys=True)  # exits through SystemExit
        code = 0
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught exception: exit 1
        import traceback

        traceback.print_exc()
        code = 1
    exit_as_the_interpreter_does(code)


def exit_as_the_interpreter_does(code) -> None:
    """End the child as `python -m engine` ends, less what nobody can observe: what the interpreter does at exit
    in its order (Py_FinalizeEx: wait for the non-daemon threads, run the atexit callbacks, flush the standard
    streams; a SystemExit message printed, exit 1), then exit at once instead of tearing every module down and
    collecting the inherited heap (~0.1 s of CPU a call). A failure during teardown itself (an exception in a
    __del__) is not seen here: FLYWHEEL_TEST_SUBPROCESS=1 runs every call as a real process."""
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = 120 if stream is sys.stdout and code == 0 else code  # as Python does when the flush fails
    os._exit(code & 0xFF)


def keep_bytecode() -> str | None:
    """Under PYTHONDONTWRITEBYTECODE every child would compile each engine module it imports from source again
    (~0.2 s a call). Instead the children share a private bytecode cache outside the source tree (the repository
    stays free of .pyc files, as the variable asks), removed when the zygote exits. Returns its path, if made."""
    if not sys.dont_write_bytecode:
        return None
    import tempfile

    sys.pycache_prefix = tempfile.mkdtemp(prefix="flywheel-zygote-pyc-")
    sys.dont_write_bytecode = False
    return sys.pycache_prefix


def serve() -> None:
    cache, zygote = keep_bytecode(), os.getpid()
    preload_engine()
    try:
        answer_requests()
    finally:
        if cache and os.getpid() == zygote:  # a child's SystemExit unwinds through here too
            import shutil

            shutil.rmtree(cache, ignore_errors=True)


def answer_requests() -> None:
    import gc

    for line in sys.stdin:
        request = json.loads(line)
        # Everything the zygote holds goes to the collector's permanent generation (gc.freeze, as its documentation
        # advises before fork): the child's collections, and the final one at its exit, then skip the inherited
        # heap instead of walking it (and copying every page it touches); ~0.3 s of CPU less a call. The child
        # exits as `python -m engine` does (threads joined, atexit, streams flushed), without the teardown.
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            become_cli(request)  # never returns
        reply({"pid": pid})
        _, status, usage = os.wait4(pid, 0)
        reply({"code": os.waitstatus_to_exitcode(status), "cpu": round(usage.ru_utime + usage.ru_stime, 3)})


if __name__ == "__main__":
    serve()
