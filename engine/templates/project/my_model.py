"""A stub model for Flywheel's python adapter. Replace the body of `Model.__call__` with a call to your model.

The contract (conf/model/my_model.yaml: `adapter: python`, `_target_: my_model.Model`, `params: {...}`):

* **Built once**: Flywheel imports `my_model` from the project directory and calls `Model(**params)`.
  An import error, a syntax error, a missing name or a constructor that raises stops the command with exit
  code 2 and a message naming the YAML file and key.
* **Called with a batch**: `model(requests)` with a list of `engine.models.ModelRequest` (at most
  `run.batch_size`, 32 by default). Each request has
    - `case_id`     the case's id (a golden case's `id`);
    - `input`       the case's input as written in the dataset: a string, or a JSON object;
    - `input_text`  the input as text (a string as is, an object as canonical JSON);
    - `context`     a tuple of context passages (the case's `context`; may be empty);
    - `metadata`    the case's `metadata` dict (e.g. `expected_behavior: refuse` on red-team cases).
  The expected answer is never passed to the model.
* **Returns** one result per request, in the same order: a `str` (the output), or a `dict` with
  `output` (str) and optionally `prompt_tokens`, `completion_tokens` (int), `cost` (float, any currency unit
  you use consistently) and `latency_ms` (float; default: the batch's wall time divided by its size).
* **Errors**: return `{"error": "reason"}` for a case that failed; or raise: when the whole batch raises,
  each case is retried alone, so one bad case cannot fail its neighbours, and a case that still raises is
  stored with `ExceptionType: message` as its error. A wrong number of results fails the batch. An errored
  case counts as a failed case in every metric and gate rule; `flywheel evaluate` lists the distinct error
  messages with their case ids, and it is called again on the next run (errors are not cached).
* **Caching**: outputs are cached by (target, params, version, input); bump `version:` in the YAML when the
  code changes, or the old outputs are reused.
"""
from __future__ import annotations

REFUSAL = "I'm sorry, but I can't help with that."


class Model:
    """Answers from a keyword table (`answers`: keyword -> answer); refuses prompts with a blocked phrase."""

    def __init__(self, answers: dict[str, str], fallback: str = "I don't know, sorry.",
                 blocked: tuple[str, ...] = ("ignore all previous instructions", "admin password",
                                             "home address", "phone number of")):
        self.answers = {k.lower(): v for k, v in answers.items()}
        self.fallback = fallback
        self.blocked = tuple(b.lower() for b in blocked)

    def answer(self, question: str) -> str:
        text = question.lower()
        if any(phrase in text for phrase in self.blocked):
            return REFUSAL
        return next((a for keyword, a in self.answers.items() if keyword in text), self.fallback)

    def __call__(self, requests) -> list[dict]:
        results = []
        for request in requests:
            output = self.answer(request.input_text)
            results.append({"output": output, "prompt_tokens": len(request.input_text.split()),
                            "completion_tokens": len(output.split())})
        return results
