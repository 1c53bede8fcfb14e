"""`flywheel whatif gate | monitor`: the stored history replayed under an edited policy, with no model calls.

    flywheel whatif gate [policy=REV] [against=REV|current] [since=DATE] [limit=N|all] [challenger=NAME]
    flywheel whatif monitor [policy=REV] [against=REV|current] [since=DATE]

Exit 0 when nothing flips, 1 when something does (or a stored decision or rule could not be replayed: fail
closed), 2 on bad input.
"""
from __future__ import annotations

from pathlib import Path

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.errors import UserError
from engine.evaluation import store_path
from engine.store import Store
from engine.whatif import policy as policies
from engine.whatif.history import DEFAULT_LIMIT, Selection, parse_limit, parse_since

ARGUMENTS = {"gate": ("policy", "against", "since", "limit", "challenger"),
             "monitor": ("policy", "against", "since")}
USAGE = ("usage: flywheel whatif gate [policy=REV] [against=REV|current] [since=DATE] [limit=N|all] "
         "[challenger=NAME] | flywheel whatif monitor [policy=REV] [against=REV|current] [since=DATE]")


def parse_arguments(args: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """(subcommand, {key: value}) from `gate since=...`; every mistake is a UserError naming it."""
    words = [a for a in args if "=" not in a]
    if len(words) != 1 or words[0] not in ARGUMENTS:
        raise UserError(f"{'unknown subcommand ' + repr(' '.join(words)) + '; ' if words else ''}{USAGE}")
    sub, options = words[0], {}
    for arg in args:
        if "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        if key not in ARGUMENTS[sub]:
            raise UserError(f"whatif {sub} takes no {key}=; it takes {', '.join(k + '=' for k in ARGUMENTS[sub])}")
        if key in options:
            raise UserError(f"{key}= given twice")
        options[key] = value
    return sub, options


def _write(target: str | None, text: str, project_dir: Path) -> Path | None:
    if not target:
        return None
    path = Path(target).expanduser()
    path = path if path.is_absolute() else project_dir / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _outputs(result: dict, composed: Composed, markdown) -> None:
    from engine.outputs import output_path
    from engine.report.html import report_path, write_html
    from engine.whatif import html  # noqa: F401  (registers the what-if pages)

    cfg, project_dir = composed.config, composed.project.dir
    written = _write(cfg.get("markdown"), markdown(result), project_dir)
    if written:
        console.print(f"markdown written to {written}", markup=False, highlight=False)
    if report_path(cfg):
        target = write_html(output_path(report_path(cfg), project_dir), result)
        console.print(f"report written to {target}", markup=False, highlight=False)


def whatif_gate(composed: Composed, options: dict[str, str]) -> Outcome:
    from engine.whatif.gate import exit_code, replay_decisions
    from engine.whatif.report import print_whatif_gate, whatif_gate_markdown

    selection = Selection(parse_since(options["since"]) if "since" in options else None,
                          parse_limit(options["limit"]) if "limit" in options else DEFAULT_LIMIT,
                          options.get("challenger") or None)
    candidate = policies.resolve(composed, options.get("policy"), "gate", candidate=True)
    reference = policies.resolve(composed, options.get("against"), "gate", candidate=False)
    path = store_path(composed.config, composed.project)
    with Store.open(path, read_only=True) as store:
        replay = replay_decisions(store.con, candidate, reference, selection)
    result = {"command": "whatif_gate", "policy": candidate.to_json("gate"), "against": reference.to_json("gate"),
              **replay, "store": str(path)}
    print_whatif_gate(result)
    _outputs(result, composed, whatif_gate_markdown)
    return Outcome(exit_code(result["summary"]), result, "whatif_gate_result")


def whatif_monitor(composed: Composed, options: dict[str, str]) -> Outcome:
    from engine.whatif.monitor import exit_code, replay_monitor
    from engine.whatif.report import print_whatif_monitor, whatif_monitor_markdown

    since = parse_since(options["since"]) if "since" in options else None
    candidate = policies.resolve(composed, options.get("policy"), "monitor", candidate=True)
    reference = policies.resolve(composed, options.get("against"), "monitor", candidate=False)
    path = store_path(composed.config, composed.project)
    with Store.open(path, read_only=True) as store:
        replay = replay_monitor(store.con, candidate, reference, since, composed)
    result = {"command": "whatif_monitor", "policy": candidate.to_json("monitor"),
              "against": reference.to_json("monitor"), **replay, "store": str(path)}
    print_whatif_monitor(result)
    _outputs(result, composed, whatif_monitor_markdown)
    return Outcome(exit_code(result["summary"]), result, "whatif_monitor_result")


def compile_sql(composed: Composed):
    """`flywheel compile whatif gate|monitor [policy=REV] [against=REV]`: the replay's statements."""
    sub, options = parse_arguments(composed.args)
    if sub == "monitor":
        from engine.whatif.monitor import PLAN

        return PLAN
    from engine.whatif.gate import compile_plan

    return compile_plan(policies.resolve(composed, options.get("policy"), "gate", candidate=True),
                        policies.resolve(composed, options.get("against"), "gate", candidate=False))


@command("whatif", "replay stored gate decisions or monitor history under an edited policy (no model calls); "
                   "exit 1 when something flips", positional=True, arguments=("policy", "against", "since", "limit",
                                                                              "challenger"), compile=compile_sql)
def whatif(composed: Composed) -> Outcome:
    sub, options = parse_arguments(composed.args)
    return whatif_gate(composed, options) if sub == "gate" else whatif_monitor(composed, options)
