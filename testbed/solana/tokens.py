"""SPL Token account bytes: build, read and render them (no chain state here).

Layouts are the SPL Token program's packed states as solders exposes them
(``solders.token.state``): a token account is :data:`TOKEN_ACCOUNT_LEN` = 165 bytes, a mint
:data:`MINT_LEN` = 82 bytes, both owned by :data:`~.keys.TOKEN_PROGRAM_ID`.

UI amounts follow the RPC's ``UiTokenAmount``: ``amount`` the raw integer as a string,
``uiAmount`` = raw / 10**decimals as a float (agave ``token_amount_to_ui_amount``), and
``uiAmountString`` the exact decimal with trailing zeros (and a trailing point) trimmed
(agave ``real_number_string_trimmed``: 150000000 raw at 6 decimals → ``"150"``, 1 → ``"0.000001"``).
"""

from __future__ import annotations

from solders.account import Account
from solders.account_decoder import UiTokenAmount
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount, TokenAccountState

from .keys import TOKEN_PROGRAM_ID

__all__ = [
    "MINT_LEN", "TOKEN_ACCOUNT_LEN", "U64_MAX", "mint_bytes", "read_mint", "read_token_account", "token_account_bytes",
    "ui_amount", "ui_amount_string", "with_amount",
]

TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
U64_MAX = 2**64 - 1


def token_account_bytes(owner: Pubkey, mint: Pubkey, amount: int) -> bytes:
    """An initialized token account of ``mint`` held by ``owner`` with ``amount`` raw units."""
    return bytes(TokenAccount(mint, owner, amount, None, TokenAccountState.Initialized, None, 0, None))


def mint_bytes(authority: Pubkey, supply: int, decimals: int) -> bytes:
    """An initialized mint (no freeze authority)."""
    return bytes(Mint(authority, supply, decimals, True, None))


def read_token_account(account: Account | None) -> TokenAccount | None:
    """The token account in ``account``, or None when it is not one (missing, other owner or size)."""
    if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != TOKEN_ACCOUNT_LEN:
        return None
    return TokenAccount.from_bytes(bytes(account.data))


def read_mint(account: Account | None) -> Mint | None:
    """The mint in ``account``, or None when it is not one."""
    if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != MINT_LEN:
        return None
    return Mint.from_bytes(bytes(account.data))


def with_amount(account: Account, amount: int) -> Account:
    """A copy of token account ``account`` holding ``amount`` raw units (lamports, owner unchanged).

    Raises:
        ValueError: ``account`` is not a token account, or ``amount`` is outside u64.
    """
    ta = read_token_account(account)
    if ta is None:
        raise ValueError("not a token account")
    if not 0 <= amount <= U64_MAX:
        raise ValueError(f"token amount {amount} is outside u64")
    data = bytes(TokenAccount(ta.mint, ta.owner, amount, ta.delegate, ta.state, ta.is_native, ta.delegated_amount,
                              ta.close_authority))  # fmt: skip
    return Account(account.lamports, data, account.owner, account.executable, account.rent_epoch)


def ui_amount_string(amount: int, decimals: int) -> str:
    """``amount`` raw units as an exact decimal string, trailing zeros trimmed."""
    if decimals == 0:
        return str(amount)
    digits = str(amount).rjust(decimals + 1, "0")
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def ui_amount(amount: int, decimals: int) -> UiTokenAmount:
    """The RPC's ``UiTokenAmount`` for ``amount`` raw units."""
    return UiTokenAmount(amount / 10**decimals, decimals, str(amount), ui_amount_string(amount, decimals))
