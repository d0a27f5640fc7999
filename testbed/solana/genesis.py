"""The cluster's starting state: the two mints, the maker's inventory and the user's accounts.

* Mints (:mod:`.keys`): base 8 decimals, USDC 6 decimals, authority ``mint-authority``, supply =
  everything handed out here.
* Maker: :data:`MAKER_TOKENS` = 10**18 raw units of each token (10 billion base tokens, 10**12
  USDC: more than any replay can take, and well within u64) and :data:`MAKER_LAMPORTS` = 1000 SOL.
* User: ``cash_raw`` USDC and 0 base in its associated token accounts (ATAs), ``sol_lamports`` SOL.

Token accounts and mints hold the rent-exempt minimum of lamports (LiteSVM's rent).

Errors: ``ValueError`` for a negative or beyond-u64 amount.
"""

from __future__ import annotations

from solders.account import Account
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from .chain import Chain
from .keys import (
    BASE_DECIMALS,
    BASE_MINT,
    MAKER,
    MINT_AUTHORITY,
    QUOTE_DECIMALS,
    QUOTE_MINT,
    TOKEN_PROGRAM_ID,
)
from .tokens import MINT_LEN, TOKEN_ACCOUNT_LEN, U64_MAX, mint_bytes, token_account_bytes

__all__ = ["MAKER_LAMPORTS", "MAKER_TOKENS", "fund_genesis", "token_account"]

MAKER_TOKENS = 10**18
MAKER_LAMPORTS = 1_000 * 10**9


def token_account(chain: Chain, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
    """Create ``owner``'s associated token account of ``mint`` holding ``amount``; its address."""
    if not 0 <= amount <= U64_MAX:
        raise ValueError(f"token amount {amount} outside u64")
    ata = get_associated_token_address(owner, mint)
    rent = chain.svm.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)
    chain.set_account(ata, Account(rent, token_account_bytes(owner, mint, amount), TOKEN_PROGRAM_ID, False, 0))
    return ata


def fund_genesis(chain: Chain, user: Pubkey, cash_raw: int, sol_lamports: int) -> None:
    """Create the mints and fund the maker and ``user`` (see the module docstring).

    Raises:
        ValueError: ``cash_raw`` or ``sol_lamports`` negative or beyond u64.
    """
    if not 0 <= cash_raw <= U64_MAX - MAKER_TOKENS:
        raise ValueError(f"cash {cash_raw} raw USDC is outside what the mint can hold")
    rent = chain.svm.minimum_balance_for_rent_exemption(MINT_LEN)
    for mint, decimals, supply in ((BASE_MINT, BASE_DECIMALS, MAKER_TOKENS),
                                   (QUOTE_MINT, QUOTE_DECIMALS, MAKER_TOKENS + cash_raw)):
        chain.set_account(mint, Account(rent, mint_bytes(MINT_AUTHORITY, supply, decimals), TOKEN_PROGRAM_ID, False, 0))
    maker = MAKER.pubkey()
    chain.set_lamports(maker, MAKER_LAMPORTS)
    token_account(chain, maker, BASE_MINT, MAKER_TOKENS)
    token_account(chain, maker, QUOTE_MINT, MAKER_TOKENS)
    chain.set_lamports(user, sol_lamports)
    token_account(chain, user, QUOTE_MINT, cash_raw)
    token_account(chain, user, BASE_MINT, 0)
