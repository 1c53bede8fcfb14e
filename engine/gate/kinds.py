"""Every gate rule kind, registered by importing this module: each kind's module is listed here, so no kind
module imports another to get it registered."""
from engine.gate import judge_calibrated, rules  # noqa: F401
