"""Commands: what the outside world asks the inventory service to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetStock:
    """An admin's count of what is on hand for one SKU."""

    sku: str
    on_hand: int
