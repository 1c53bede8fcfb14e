"""Deterministic judges for demos and tests: python models that answer judge prompts like an LLM judge would.

A judge prompt is the rendered rubric (engine/metrics/judge.py); these judges read its `### Heading`
sections, so a rubric for them must keep the reference and the answer under their own headings.
"""
from __future__ import annotations

import json
import re
from typing import Any

_WORD = re.compile(r"[^\W_]+")
_IGNORED = frozenset(["a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "are", "per"])


def sections(prompt: str) -> dict[str, str]:
    """`### Name` headings of a prompt -> the text under each."""
    out: dict[str, str] = {}
    current = None
    for line in prompt.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _IGNORED}


class KeywordJudge:
    """Grades an answer by the share of a reference answer's words it contains (best over references
    separated by " | "): verdict pass at >= pass_score.

    `mode` makes it misbehave on purpose, for tests of the fail-closed parsing: "garbage" answers prose,
    "missing_verdict" JSON without a verdict, "fenced" JSON inside a Markdown code fence, "bad_score" a score
    of 7."""

    MODES = ("json", "garbage", "missing_verdict", "fenced", "bad_score")

    def __init__(self, pass_score: float = 0.5, mode: str = "json", answer_heading: str = "Answer",
                 reference_heading: str = "Reference answer"):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}")
        self.pass_score = float(pass_score)
        self.mode = mode
        self.answer_heading = answer_heading
        self.reference_heading = reference_heading

    def grade(self, prompt: str) -> dict:
        parts = sections(prompt)
        answer = _words(parts.get(self.answer_heading, ""))
        scores = []
        for reference in parts.get(self.reference_heading, "").split(" | "):
            words = _words(reference)
            if words:
                scores.append(len(words & answer) / len(words))
        score = round(max(scores), 4) if scores else 0.0
        verdict = "pass" if score >= self.pass_score else "fail"
        reason = (f"{score:.0%} of the reference answer's words are in the answer" if scores
                  else "no reference answer to compare with")
        return {"verdict": verdict, "score": score, "reason": reason}

    def answer(self, prompt: str) -> str:
        g = self.grade(prompt)
        if self.mode == "garbage":
            return f"Looks {g['verdict']}ing to me, roughly {g['score']}."
        if self.mode == "missing_verdict":
            return json.dumps({"score": g["score"], "reason": g["reason"]})
        if self.mode == "fenced":
            return "```json\n" + json.dumps(g) + "\n```"
        if self.mode == "bad_score":
            return json.dumps({**g, "score": 7})
        return json.dumps(g)

    def __call__(self, requests: list[Any]) -> list[dict]:
        out = []
        for r in requests:
            text = self.answer(r.input_text)
            out.append({"output": text, "prompt_tokens": len(r.input_text.split()),
                        "completion_tokens": len(text.split()), "cost": 0.0})
        return out
