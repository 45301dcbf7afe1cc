"""Where the project's files are: the CLI runs from a clone (an editable install)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "migrations"
SCHEMAS_DIR = ROOT / "events" / "schemas"
TEMPLATE = ROOT / "template.yaml"
