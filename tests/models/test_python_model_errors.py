"""A python model that cannot be imported or built, and one that raises: what the user is told.

An import failure is one message (printed once, no traceback, exit 2) naming the YAML file and key the
`_target_` came from, the real exception, and the hint that fits it. A model that raises on some cases shows
the distinct error messages with their counts and case ids."""
from __future__ import annotations

import pytest

MODEL_YAML = "conf/model/lookup_better.yaml"


def _break_target(project, target: str) -> None:
    path = project / MODEL_YAML
    text = path.read_text(encoding="utf-8")
    assert "_target_: lookup_model.LookupModel" in text
    path.write_text(text.replace("_target_: lookup_model.LookupModel", f"_target_: {target}"), encoding="utf-8")


def _single_error(r) -> str:
    assert r.code == 2, r
    assert "Traceback" not in r.stderr + r.stdout
    # one message, printed once (Hydra's get_object logged it a second time)
    assert r.stderr.count("error:") == 1 and "Error getting object" not in r.stderr + r.stdout, r.stderr
    return r.stderr


CASES = {
    # target, module source written into the project, what the message must say, the hint
    "module_not_found": ("lookup_modl.LookupModel", None,
                         ["no module named 'lookup_modl'", "not in the project directory"],
                         ["put lookup_modl.py", "did you mean 'lookup_model'?"]),
    "dependency_missing": ("needs_dep.Model", "import numpy_but_misspelt_xyz\n\nclass Model:\n    pass\n",
                           ["module 'needs_dep' was found, but it imports 'numpy_but_misspelt_xyz', which is not "
                            "installed", "needs_dep.py:1"],
                           ["install the package that provides 'numpy_but_misspelt_xyz'"]),
    "syntax_error": ("broken_syntax.Model", "class Model:\n    def __call__(self, requests)\n        return []\n",
                     ["SyntaxError: expected ':'", "broken_syntax.py:2", "def __call__(self, requests)"],
                     ["fix the syntax at", "py_compile"]),
    "attribute_missing": ("lookup_model.LookupModle", None,
                          ["'lookup_model'", "lookup_model.py) has no attribute 'LookupModle'"],
                          ["did you mean 'LookupModel'?"]),
    "import_raised": ("raises_on_import.Model", "import os\nKEY = os.environ['FLYWHEEL_TEST_NO_SUCH_VAR']\n",
                      ["importing module 'raises_on_import' raised KeyError", "raises_on_import.py:2"],
                      ["top-level code runs when it is imported"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_an_unimportable_target_names_the_file_key_exception_and_fitting_hint(cli, project, kind):
    target, source, says, hints = CASES[kind]
    if source is not None:
        (project / f"{target.split('.')[0]}.py").write_text(source, encoding="utf-8")
    _break_target(project, target)
    err = _single_error(cli("gate", cwd=project))
    assert f"{MODEL_YAML} @ challenger._target_:" in err, err
    for text in says + hints:
        assert text in err, (text, err)
    # the hints of the other kinds do not appear: the message says what is wrong, not a guess
    others = {"module_not_found": "put ", "dependency_missing": "install the package",
              "syntax_error": "fix the syntax", "attribute_missing": "names a class or a function",
              "import_raised": "top-level code"}
    for other, hint in others.items():
        if other != kind:
            assert f"hint: {hint}" not in err, (other, err)
    assert "Are you sure that" not in err  # Hydra's misleading "is it installed?" is gone


def test_a_target_overridden_on_the_command_line_is_named_as_such(cli, project):
    err = _single_error(cli("evaluate", "model._target_=lookup_model.Nope", cwd=project))
    assert "<command line: model._target_=lookup_model.Nope> @ model._target_:" in err, err


def test_params_the_constructor_does_not_take_name_the_params_key(cli, project):
    err = _single_error(cli("evaluate", "+model.params.colour=blue", cwd=project))
    assert "@ model.params:" in err and "colour" in err and "unexpected keyword argument" in err, err
    assert "make `params:` match the signature" in err


def test_a_constructor_that_raises_is_reported_with_its_line(cli, project):
    (project / "strict_model.py").write_text(
        "class Model:\n    def __init__(self, answers):\n        raise ValueError('no answers file')\n",
        encoding="utf-8")
    err = _single_error(cli("evaluate", "model._target_=strict_model.Model", cwd=project))
    assert "raised ValueError: no answers file at" in err and "strict_model.py:3" in err, err


def test_a_model_that_raises_lists_each_distinct_message_with_count_and_case_ids(cli, project):
    (project / "flaky_model.py").write_text(
        "class Model:\n"
        "    def __init__(self, **_):\n        pass\n"
        "    def __call__(self, requests):\n"
        "        out = []\n"
        "        for r in requests:\n"
        "            if r.case_id in ('m2', 'm3', 'm5'):\n"
        "                raise TimeoutError('upstream took more than 30 s')\n"
        "            if r.case_id == 'm4':\n"
        "                raise KeyError('price')\n"
        "            out.append('30 days')\n"
        "        return out\n", encoding="utf-8")
    r = cli("evaluate", "model._target_=flaky_model.Model", "out=result.json", cwd=project,
            env={"COLUMNS": "80"})
    assert r.code == 0, r
    assert r.json["calls"]["errors"] == 4
    assert r.json["error_messages"] == [
        {"message": "TimeoutError: upstream took more than 30 s", "count": 3, "case_ids": ["m2", "m3", "m5"]},
        {"message": "KeyError: 'price'", "count": 1, "case_ids": ["m4"]}]
    out = r.stdout
    assert "lookup: 4 errored case(s), 2 distinct error message(s):" in out, out
    assert "3 x TimeoutError: upstream took more than 30 s  (case m2, m3, m5)" in out, out
    assert "1 x KeyError: 'price'  (case m4)" in out, out
    # the gate shows them per side too
    g = cli("gate", "challenger._target_=flaky_model.Model", "out=gate.json", cwd=project)
    assert g.code == 1, g
    assert g.json["challenger"]["error_messages"][0]["count"] == 3
    assert "lookup_better: 4 errored case(s)" in g.stdout, g.stdout
