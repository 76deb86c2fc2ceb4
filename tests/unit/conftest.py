"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest
import yfinance


@pytest.fixture
def history(monkeypatch):
    """Replace ``Ticker.history``: ``answer`` is a frame to return, an exception to raise, or what
    the call does instead (given its keyword arguments)."""
    calls = []

    def install(answer):
        def fake(self, **kwargs):
            calls.append((self.ticker, kwargs))
            if isinstance(answer, BaseException):
                raise answer
            if callable(answer):
                return answer(**kwargs)
            return answer

        monkeypatch.setattr(yfinance.Ticker, "history", fake)
        return calls

    return install
