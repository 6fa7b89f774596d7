"""Masking a KEY=value secret keeps the text around it intact: a closing quote is not part of the value."""

from __future__ import annotations

import pytest

from sdsetup.redact import redact_text

CANARY = "s3cr3t-CANARY"


@pytest.mark.parametrize(("line", "expected"), [
    (f'set "HF_TOKEN={CANARY}"', 'set "HF_TOKEN=***"'),
    (f"export HF_TOKEN='{CANARY}'", "export HF_TOKEN='***'"),
    (f'export HF_TOKEN="{CANARY}"', 'export HF_TOKEN="***"'),
    (f"HF_TOKEN={CANARY} next", "HF_TOKEN=*** next"),
    (f"HF_TOKEN='{CANARY}' API_KEY={CANARY}", "HF_TOKEN='***' API_KEY=***"),
])
def test_a_masked_value_keeps_the_closing_quote_of_its_surroundings(line, expected):
    out = redact_text(line)
    assert CANARY not in out
    assert out == expected
