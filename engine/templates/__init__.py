"""Files `flywheel init` writes: `project/` is copied as is into the new project directory (see
engine/commands/init.py). Shipped in the wheel as package data."""
