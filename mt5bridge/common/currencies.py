"""The currencies the product knows, in the one order the compiled engine's currency masks use.

Bit i of a currency mask is CURRENCY_CODES[i]: the configuration validates a symbol's currencies against this
list, the news calendar turns each release into a mask, and the engine matches the two. Kept below all of them,
so that none has to import another to agree on the bits.
"""

from __future__ import annotations

# ISO codes of the currencies FX brokers quote; a six-letter symbol made of two of them is a currency pair.
# The order is fixed (append new codes at the end, never reorder): it is the engine's bit order.
CURRENCY_CODES: tuple[str, ...] = (
    "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "PLN", "HUF", "CZK", "TRY",
    "ZAR", "MXN", "SGD", "HKD", "CNH", "ILS", "RUB", "THB",
)
CURRENCIES = frozenset(CURRENCY_CODES)

CURRENCY_BITS: tuple[str, ...] = CURRENCY_CODES
"""Bit i of a currency mask is CURRENCY_BITS[i] (news blackouts match a release to a symbol by currency)."""


def currency_mask(currencies: list[str] | tuple[str, ...]) -> int:
    """The bits of ``currencies``; a code without a bit is refused, never dropped (its news would pass unseen)."""
    mask = 0
    for code in currencies:
        if code not in CURRENCY_BITS:
            raise ValueError(f"currency {code!r} has no news bit; known: {', '.join(CURRENCY_BITS)}")
        mask |= 1 << CURRENCY_BITS.index(code)
    return mask
