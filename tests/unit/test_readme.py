"""The README is the contract with a new user: its commands and every config key must be there."""

from pathlib import Path

import msgspec

from mm.cli import build_parser
from mm.config import Config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_gives_the_two_setup_commands():
    assert "make run" in README and "make test" in README


def test_readme_names_every_config_key():
    missing = [f"{section.name}.{field.name}"
               for section in msgspec.structs.fields(Config)
               for field in msgspec.structs.fields(section.type)
               if f"`{field.name}`" not in README]
    assert missing == []


def test_readme_names_every_command():
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert [c for c in commands if f"mm {c}" not in README] == []
