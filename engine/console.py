"""The shared rich consoles: results to stdout, errors to stderr. Soft wrap: long messages and paths stay on
one line, so they can be copied and grepped."""
from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
