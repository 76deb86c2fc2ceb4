"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest
import yfinance


@pytest.fixture
def history(monkeypatch):
    """Replace ``Ticker.history``: ``answer`` is a frame to return or an exception to raise."""
    calls = []

    def install(answer):
        def fake(self, **kwargs):
            calls.append((self.ticker, kwargs))
            if isinstance(answer, BaseException):
                raise answer
            return answer

        monkeypatch.setattr(yfinance.Ticker, "history", fake)
        return calls

    return install
