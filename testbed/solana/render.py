"""JSON shapes of the Solana RPC, rendered from chain records (no state here).

Where solders has the response type, it renders (``json.loads(obj.to_json())``), so solana-py
0.41 parses exactly what it would parse from a real node; the rest follows the agave 2.x RPC
(https://solana.com/docs/rpc/http). Two solders 0.29 quirks are corrected on the way out:

* ``status`` is always rendered ``{"Ok": null}``, even next to an ``err`` — agave sends
  ``{"Err": <err>}`` then (:func:`fix_status`);
* ``space`` of an account is rendered null — agave sends the data length.

Encodings: transactions as ``json`` (a ``UiTransaction``: signatures, message with header,
accountKeys, recentBlockhash, instructions with base58 data, addressTableLookups for v0),
``base64`` or ``base58``; accounts as ``base64``, ``base58`` (data < 129 bytes, agave's limit)
or ``jsonParsed`` (token accounts and mints parsed as agave's ``spl-token`` parser does; other
accounts fall back to base64, as agave does).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcBlockhash, RpcSimulateTransactionResult
from solders.token.state import TokenAccountState
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorType,
    UiLoadedAddresses,
    UiTransactionStatusMeta,
)

from .chain import Landed, Simulation
from .tokens import read_mint, read_token_account, ui_amount

__all__ = [
    "API_VERSION", "BASE58_MAX_BYTES", "EncodingError", "account_json", "b58decode", "b58encode", "context",
    "error_text", "fix_status", "parsed_spl_token", "result_of", "simulation_json", "transaction_json",
]

API_VERSION = "2.2.7"
"""The agave version this node claims (``getVersion``, ``context.apiVersion``)."""

BASE58_MAX_BYTES = 128
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}

_FIELDLESS_TEXT = (  # solders' fieldless errors are not hashable: pairs, searched in order
    (TransactionErrorFieldless.AccountInUse, "Account in use"),
    (TransactionErrorFieldless.AccountNotFound, "Attempt to debit an account but found no record of a prior credit."),
    (TransactionErrorFieldless.AlreadyProcessed, "This transaction has already been processed"),
    (TransactionErrorFieldless.BlockhashNotFound, "Blockhash not found"),
    (TransactionErrorFieldless.InsufficientFundsForFee, "Insufficient funds for fee"),
    (TransactionErrorFieldless.SignatureFailure, "Transaction did not pass signature verification"),
)
"""agave ``TransactionError`` Display texts (solana-transaction-error) for the errors this cluster produces."""


class EncodingError(ValueError):
    """Bytes that cannot be shown in the asked encoding (base58 over 128 bytes, unknown encoding)."""


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Raises: ValueError on a character outside the base58 alphabet."""
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"invalid base58 character {c!r}")
        n = n * 58 + _B58_INDEX[c]
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def result_of(obj: Any) -> Any:
    """The ``result`` member of a solders response object's JSON."""
    return json.loads(obj.to_json())["result"]


def context(slot: int) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "slot": slot}


def fix_status(d: dict[str, Any]) -> dict[str, Any]:
    """Set ``status`` to ``{"Err": err}`` when ``err`` is set (agave's shape)."""
    if d.get("err") is not None and "status" in d:
        d["status"] = {"Err": d["err"]}
    return d


def error_text(err: TransactionErrorType) -> str:
    """agave's Display text of ``err`` (``"Error processing Instruction 2: custom program error: 0x1"``);
    the solders repr for an error this cluster does not expect to produce."""
    if isinstance(err, TransactionErrorFieldless):
        for known, text in _FIELDLESS_TEXT:
            if err == known:
                return text
    if isinstance(err, TransactionErrorInstructionError):
        index, inner = err.index, err.err
        custom = getattr(inner, "code", None)
        detail = f"custom program error: {custom:#x}" if isinstance(custom, int) else str(inner)
        return f"Error processing Instruction {index}: {detail}"
    return str(err)


def _encode_bytes(data: bytes, encoding: str) -> list[str]:
    if encoding == "base64":
        return [base64.b64encode(data).decode(), "base64"]
    if encoding == "base58":
        if len(data) > BASE58_MAX_BYTES:
            raise EncodingError("Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.")
        return [b58encode(data), "base58"]
    raise EncodingError(f"unsupported encoding {encoding!r}")


def _ui_transaction(tx: VersionedTransaction) -> dict[str, Any]:
    m = tx.message
    h = m.header
    message: dict[str, Any] = {
        "header": {"numRequiredSignatures": h.num_required_signatures,
                   "numReadonlySignedAccounts": h.num_readonly_signed_accounts,
                   "numReadonlyUnsignedAccounts": h.num_readonly_unsigned_accounts},
        "accountKeys": [str(k) for k in m.account_keys],
        "recentBlockhash": str(m.recent_blockhash),
        "instructions": [{"programIdIndex": ix.program_id_index, "accounts": list(bytes(ix.accounts)),
                          "data": b58encode(bytes(ix.data)), "stackHeight": None} for ix in m.instructions],
    }  # fmt: skip
    if isinstance(m, MessageV0):
        message["addressTableLookups"] = [
            {"accountKey": str(t.account_key), "writableIndexes": list(bytes(t.writable_indexes)),
             "readonlyIndexes": list(bytes(t.readonly_indexes))} for t in m.address_table_lookups
        ]  # fmt: skip
    return {"signatures": [str(s) for s in tx.signatures], "message": message}


def transaction_json(rec: Landed, encoding: str) -> dict[str, Any]:
    """``getTransaction``'s result for a landed record.

    Raises:
        EncodingError: an encoding other than json, base64 or base58 (jsonParsed is not served).
    """
    v0 = isinstance(rec.tx.message, MessageV0)
    meta = UiTransactionStatusMeta(
        rec.err, rec.fee, list(rec.pre_balances), list(rec.post_balances), [], list(rec.logs),
        list(rec.pre_token_balances), list(rec.post_token_balances), [],
        UiLoadedAddresses([], []) if v0 else None, None, rec.units,
    )  # fmt: skip
    meta_json = fix_status(json.loads(meta.to_json()))
    tx = _ui_transaction(rec.tx) if encoding == "json" else _encode_bytes(bytes(rec.tx), encoding)
    return {"slot": rec.slot, "transaction": tx, "meta": meta_json, "version": 0 if v0 else "legacy",
            "blockTime": None}  # fmt: skip


def account_json(account: Account, encoding: str, decimals_of: Callable[[Pubkey], int | None]) -> dict[str, Any]:
    """An account as ``getAccountInfo`` / ``getTokenAccountsByOwner`` show it (``decimals_of``: a
    mint's decimals, for parsing token accounts).

    Raises:
        EncodingError: base58 of more than 128 bytes, or an unknown encoding.
    """
    data = bytes(account.data)
    out: dict[str, Any] = {"lamports": account.lamports, "owner": str(account.owner),
                           "executable": account.executable, "rentEpoch": account.rent_epoch, "space": len(data)}
    parsed = parsed_spl_token(account, decimals_of) if encoding == "jsonParsed" else None
    if parsed is not None:
        out["data"] = {"program": "spl-token", "parsed": parsed, "space": len(data)}
    else:
        out["data"] = _encode_bytes(data, "base64" if encoding == "jsonParsed" else encoding)
    return out


def parsed_spl_token(account: Account, decimals_of: Callable[[Pubkey], int | None]) -> dict[str, Any] | None:
    """agave's ``jsonParsed`` ``spl-token`` view of a token account or a mint (None for anything else)."""
    ta = read_token_account(account)
    if ta is not None:
        decimals = decimals_of(ta.mint)
        if decimals is None:
            return None
        return {"type": "account", "info": {
            "isNative": ta.is_native is not None, "mint": str(ta.mint), "owner": str(ta.owner),
            "state": "frozen" if ta.state == TokenAccountState.Frozen else "initialized",
            "tokenAmount": json.loads(ui_amount(ta.amount, decimals).to_json())}}  # fmt: skip
    mint = read_mint(account)
    if mint is not None:
        freeze = mint.freeze_authority
        return {"type": "mint", "info": {
            "decimals": mint.decimals, "freezeAuthority": None if freeze is None else str(freeze),
            "isInitialized": mint.is_initialized, "mintAuthority": str(mint.mint_authority), "supply": str(mint.supply)}}  # fmt: skip
    return None


def simulation_json(sim: Simulation) -> dict[str, Any]:
    """``simulateTransaction``'s value (and the ``data`` of a preflight failure)."""
    repl = RpcBlockhash(*sim.replacement) if sim.replacement is not None else None
    res = RpcSimulateTransactionResult(sim.err, list(sim.logs), None, sim.units, None, None, repl, sim.fee)
    return json.loads(res.to_json())
