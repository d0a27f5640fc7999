"""The local cluster's fixed identities and token constants.

Every fixed address is the public key of ``Keypair.from_seed(sha256(b"tandem-local-solana/" + name))``
(:func:`seeded`), so the same addresses come back on every run and anyone (the
``solana-emulator`` plugin's ``instrument()``, a test) can compute them without starting anything:

* ``base-mint``: the traded token, :data:`BASE_DECIMALS` = 8 decimals (like wrapped BTC on
  Solana: Wormhole WBTC and cbBTC both use 8);
* ``quote-mint``: "USDC", :data:`QUOTE_DECIMALS` = 6 decimals (Circle's USDC on Solana uses 6);
* ``maker``: the RFQ market maker that quotes and co-signs every swap;
* ``mint-authority``: authority of both mints (nothing is ever minted after genesis).

The user's key is not here: each cluster run makes a fresh one (``__main__`` writes it out).
"""

from __future__ import annotations

import hashlib

from solders.keypair import Keypair
from solders.pubkey import Pubkey

__all__ = [
    "BASE_DECIMALS", "BASE_MINT", "LAMPORTS_PER_SOL", "MAKER", "MINT_AUTHORITY", "QUOTE_DECIMALS", "QUOTE_MINT",
    "SEED_PREFIX", "SOL_DECIMALS", "SOL_MINT", "TOKEN_PROGRAM_ID", "seeded",
]

SEED_PREFIX = b"tandem-local-solana/"
BASE_DECIMALS = 8
QUOTE_DECIMALS = 6
SOL_DECIMALS = 9
LAMPORTS_PER_SOL = 10**SOL_DECIMALS

SOL_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
"""The wrapped-SOL mint (what Jupiter's price API calls SOL); no such account exists on this cluster."""

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
"""The SPL Token program (LiteSVM preloads it)."""


def seeded(name: str) -> Keypair:
    """The cluster's fixed keypair called ``name`` (``base-mint``, ``quote-mint``, ``maker``, ``mint-authority``)."""
    return Keypair.from_seed(hashlib.sha256(SEED_PREFIX + name.encode()).digest())


BASE_MINT: Pubkey = seeded("base-mint").pubkey()
QUOTE_MINT: Pubkey = seeded("quote-mint").pubkey()
MAKER: Keypair = seeded("maker")
MINT_AUTHORITY: Pubkey = seeded("mint-authority").pubkey()
