"""The command line's argument parser: a command's flags go before or after its subcommand.

``orderflow outbox --state-dir DIR status`` and ``orderflow outbox status --state-dir DIR``
mean the same, as ``orderflow --debug journey ID`` and ``orderflow journey ID --debug`` do:
each subcommand inherits its parent's optional flags. The copy a subcommand holds
defaults to ``argparse.SUPPRESS``, so that not giving it there keeps what the parent
parsed (argparse copies a subcommand's namespace over its parent's).

An unknown flag is refused by the innermost command that saw it, with that command's
usage (exit 2), rather than by the top-level parser with a usage that does not show it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

Flag = tuple[tuple[Any, ...], dict[str, Any]]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose subcommands take its flags too, and which refuses unknown ones."""

    def __init__(self, *args: Any, inherited: Sequence[Flag] = (), **kwargs: Any) -> None:
        self.flags: list[Flag] = []  # this parser's flags, as given to add_argument
        # A subcommand may define a flag its parent has: its own definition wins.
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(*args, **kwargs)
        for flag_args, flag_kwargs in inherited:
            self.add_argument(*flag_args, **{**flag_kwargs, "default": argparse.SUPPRESS, "required": False})

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and kwargs.get("action") not in ("help", "version"):
            self.flags.append((args, kwargs))
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        flags = self.flags  # read when each subcommand is built: flags added until then are inherited

        class Subcommand(Parser):
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, inherited=list(flags), **kw)

        kwargs.setdefault("parser_class", Subcommand)
        self.subcommands: argparse._SubParsersAction[Parser] = super().add_subparsers(**kwargs)
        return self.subcommands

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra
