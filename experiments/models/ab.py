"""Online A/B experiments, canaries and the scores app servers post."""

from __future__ import annotations

__all__: list[str] = []
