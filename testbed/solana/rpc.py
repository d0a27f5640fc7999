"""The Solana JSON-RPC 2.0 node of the local cluster (sans-IO: bytes in, a JSON reply out).

:meth:`RpcNode.handle` takes a request body (one call or a batch) and returns an
:class:`RpcReply`: the JSON body and whether the server must hold it (a ``stall_*`` fault).
Shapes follow agave 2.x (https://solana.com/docs/rpc/http) as solana-py 0.41's ``AsyncClient``
sends and parses them; rendering is :mod:`.render`.

Methods: getLatestBlockhash, getBlockHeight, getSlot, getEpochInfo, isBlockhashValid,
sendTransaction, simulateTransaction, getSignatureStatuses, getTransaction, getBalance,
getTokenAccountBalance, getTokenAccountsByOwner, getAccountInfo, getMinimumBalanceForRentExemption,
getGenesisHash, getHealth, getVersion.

**The view.** Every read is made at the view height ``v = max(1, height - lag_blocks)`` (the
``lag_blocks`` fault; 0 normally): heights, slots, ``context.slot``, blockhashes
(``getLatestBlockhash`` returns the hash of block ``v``, valid to ``v + 150``), statuses and
transactions that landed after ``v`` (null), and balances as they were at ``v``. ``commitment``
is accepted and ignored: every commitment reads the same view (a simplification: a real node's
"finalized" reads are ~32 blocks behind). ``minContextSlot`` above ``v`` → -32016.

**sendTransaction** (``encoding`` base58 by default, as agave; solana-py sends base64). Order:
decode (-32602 on bad bytes) → count the send → ``stall_sends`` (hold, nothing done) → unless
``skipPreflight``: signatures (-32003 "Transaction signature verification failure") and a
simulation against the tip (-32002 "Transaction simulation failed: <agave error text>", ``data``
= the simulation result, whose ``err`` is the typed error: ``BlockhashNotFound`` for an unknown
or expired blockhash, ``AlreadyProcessed`` for a landed signature, an ``InstructionError`` ...)
→ delivery to the leader: a cursed signature (``never_land``) or a new one that gets cursed, or
``drop_sends``, is not landed; otherwise :meth:`.chain.Chain.land` (which silently drops a
transaction with an expired blockhash, bad signatures or an already landed signature) →
``stall_after_land`` (hold, if it landed) → the signature (base58). Preflight and landing use
the tip, not the lagged view (the transaction is forwarded to the leader).

Errors (JSON-RPC error objects, HTTP 200): -32700 "Parse error" (not JSON), -32600 "Invalid
request" (not a JSON-RPC 2.0 call, an empty batch), -32601 "Method not found", -32602 "Invalid
params: ..." (bad or missing parameters, > 256 signatures), -32002 / -32003 (preflight),
-32015 (a v0 transaction asked for without ``maxSupportedTransactionVersion``: 0), -32016;
``getTokenAccountBalance`` answers agave's exact -32602 texts "Invalid param: could not find
account" and "Invalid param: not a Token account".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solders.epoch_info import EpochInfo
from solders.hash import Hash, ParseHashError
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import GetEpochInfoResp
from solders.signature import Signature
from solders.transaction import SanitizeError, VersionedTransaction

from .chain import GENESIS_HEIGHT, VALID_BLOCKS, Chain, Landed
from .faults import Faults
from .keys import SEED_PREFIX, TOKEN_PROGRAM_ID
from .render import (
    API_VERSION,
    EncodingError,
    account_json,
    b58decode,
    context,
    error_text,
    fix_status,
    result_of,
    simulation_json,
    transaction_json,
)
from .tokens import read_mint, read_token_account, ui_amount

__all__ = ["FEATURE_SET", "GENESIS_HASH", "MAX_SIGNATURES", "SLOTS_PER_EPOCH", "Held", "RpcError", "RpcNode", "RpcReply"]

SLOTS_PER_EPOCH = 432_000
"""Mainnet's epoch length (``getEpochSchedule``: slotsPerEpoch 432000)."""

MAX_SIGNATURES = 256
"""agave ``MAX_GET_SIGNATURE_STATUSES_QUERY_ITEMS``."""

GENESIS_HASH = Hash(hashlib.sha256(SEED_PREFIX + b"genesis").digest())
"""``getGenesisHash``: fixed for this cluster (sha256 of ``tandem-local-solana/genesis``), unlike
any public cluster's (mainnet 5eykt4Us..., devnet EtWTRABZ...)."""

FEATURE_SET = 3_294_202_862
"""An arbitrary ``feature-set`` id for ``getVersion``."""

_V0_UNSUPPORTED = ("Transaction version (0) is not supported by the requesting client. Please try the request "
                   'again with the following configuration parameter: "maxSupportedTransactionVersion": 0')


class RpcError(Exception):
    """A JSON-RPC error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def body(self, rid: Any) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return {"jsonrpc": "2.0", "error": err, "id": rid}


def _invalid(what: str) -> RpcError:
    return RpcError(-32602, f"Invalid params: {what}")


@dataclass(frozen=True, slots=True)
class Held:
    """A handler's result whose answer the server must hold forever (``stall_*`` faults)."""

    result: Any


@dataclass(frozen=True, slots=True)
class RpcReply:
    """The JSON body to answer with, and whether to hold it instead."""

    body: Any
    hold: bool = False


class RpcNode:
    """JSON-RPC over a :class:`Chain` and the cluster's :class:`Faults`.

    Attributes:
        sends: how many ``sendTransaction`` requests each signature arrived in.
    """

    def __init__(self, chain: Chain, faults: Faults, log: Callable[..., None] | None = None) -> None:
        self.chain, self.faults = chain, faults
        self.log = log or (lambda event, **kw: None)
        self.sends: Counter[Signature] = Counter()
        self._accepted: set[Signature] = set()
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "getLatestBlockhash": self.get_latest_blockhash, "getBlockHeight": self.get_block_height,
            "getSlot": self.get_block_height, "getEpochInfo": self.get_epoch_info,
            "isBlockhashValid": self.is_blockhash_valid, "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction, "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction, "getBalance": self.get_balance,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner, "getAccountInfo": self.get_account_info,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getGenesisHash": lambda params: str(GENESIS_HASH), "getHealth": lambda params: "ok",
            "getVersion": lambda params: {"solana-core": API_VERSION, "feature-set": FEATURE_SET},
        }  # fmt: skip

    # ---------------------------------------------------------------------------- dispatch
    def handle(self, raw: bytes) -> RpcReply:
        """Answer one HTTP request body (a call or a batch of calls)."""
        try:
            body = json.loads(raw)
        except ValueError:
            return RpcReply(RpcError(-32700, "Parse error").body(None))
        if isinstance(body, list):
            if not body:
                return RpcReply(RpcError(-32600, "Invalid request").body(None))
            replies = [self._call(b) for b in body]
            return RpcReply([r.body for r in replies], any(r.hold for r in replies))
        return self._call(body)

    def _call(self, req: Any) -> RpcReply:
        rid = req.get("id") if isinstance(req, dict) else None
        if (not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str)
                or not isinstance(rid, str | int | None) or isinstance(rid, bool)):
            return RpcReply(RpcError(-32600, "Invalid request").body(None if isinstance(rid, bool) else rid))
        handler = self.methods.get(req["method"])
        if handler is None:
            return RpcReply(RpcError(-32601, "Method not found").body(rid))
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return RpcReply(_invalid("expected an array of parameters").body(rid))
        try:
            result = handler(params)
        except RpcError as e:
            return RpcReply(e.body(rid))
        held = isinstance(result, Held)
        return RpcReply({"jsonrpc": "2.0", "result": result.result if held else result, "id": rid}, held)

    # ----------------------------------------------------------------------------- params
    def view(self, cfg: dict[str, Any]) -> int:
        """The height this node answers at; -32016 when ``minContextSlot`` is above it."""
        v = max(GENESIS_HEIGHT, self.chain.height - self.faults.lag_blocks)
        mcs = cfg.get("minContextSlot")
        if isinstance(mcs, int) and mcs > v:
            raise RpcError(-32016, "Minimum context slot has not been reached", {"contextSlot": v})
        return v

    # ------------------------------------------------------------------------------ blocks
    def get_latest_blockhash(self, params: list[Any]) -> Any:
        v = self.view(_config(params, 0))
        return {"context": context(v),
                "value": {"blockhash": str(self.chain.blockhash_at(v)), "lastValidBlockHeight": v + VALID_BLOCKS}}

    def get_block_height(self, params: list[Any]) -> Any:
        return self.view(_config(params, 0))

    def get_epoch_info(self, params: list[Any]) -> Any:
        v = self.view(_config(params, 0))
        info = EpochInfo(v // SLOTS_PER_EPOCH, v % SLOTS_PER_EPOCH, SLOTS_PER_EPOCH, v, v, self.chain.transaction_count(v))
        return result_of(GetEpochInfoResp(info))

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        bh = _hash(_arg(params, 0, str, "blockhash"))
        v = self.view(_config(params, 1))
        return {"context": context(v), "value": self.chain.blockhash_valid(bh, at=v)}

    # ------------------------------------------------------------------------ transactions
    def send_transaction(self, params: list[Any]) -> Any:
        cfg = _config(params, 1)
        tx = _decode_tx(params, cfg)
        sig = tx.signatures[0]
        self.sends[sig] += 1
        if self.faults.take("stall_sends"):
            self.log("send.stalled", signature=str(sig))
            return Held(None)
        self.view(cfg)
        if not cfg.get("skipPreflight", False):
            if not self.chain.signatures_valid(tx):
                raise RpcError(-32003, "Transaction signature verification failure")
            sim = self.chain.simulate(tx)
            if sim.err is not None:
                self.log("send.preflight_failed", signature=str(sig), err=str(sim.err))
                raise RpcError(-32002, "Transaction simulation failed: " + error_text(sim.err), simulation_json(sim))
        rec = self._deliver(tx)
        if rec is not None and self.faults.take("stall_after_land"):
            self.log("send.stalled_after_land", signature=str(sig))
            return Held(str(sig))
        return str(sig)

    def _deliver(self, tx: VersionedTransaction) -> Landed | None:
        """Forward an accepted transaction to the leader: the delivery faults, then landing."""
        sig = tx.signatures[0]
        first = sig not in self._accepted
        self._accepted.add(sig)
        if sig in self.faults.cursed or (first and self.faults.take("never_land")):
            self.faults.cursed.add(sig)
            self.log("send.never_lands", signature=str(sig))
            return None
        if self.faults.take("drop_sends"):
            self.log("send.dropped", signature=str(sig))
            return None
        rec = self.chain.land(tx)
        if rec is not None:
            self.log("send.landed", signature=str(sig), slot=rec.slot, fee=rec.fee, err=str(rec.err) if rec.err else None)
        return rec

    def simulate_transaction(self, params: list[Any]) -> Any:
        cfg = _config(params, 1)
        tx = _decode_tx(params, cfg)
        v = self.view(cfg)
        if cfg.get("sigVerify") and not self.chain.signatures_valid(tx):
            raise RpcError(-32003, "Transaction signature verification failure")
        sim = self.chain.simulate(tx, replace_blockhash=bool(cfg.get("replaceRecentBlockhash")))
        return {"context": context(v), "value": simulation_json(sim)}

    def get_signature_statuses(self, params: list[Any]) -> Any:
        sigs = _arg(params, 0, list, "signatures")
        if len(sigs) > MAX_SIGNATURES:
            raise _invalid(f"Too many inputs provided; max {MAX_SIGNATURES}")
        parsed = [_signature(s) for s in sigs]
        cfg = _config(params, 1)
        v = self.view(cfg)
        search = bool(cfg.get("searchTransactionHistory", False))
        out = []
        for sig in parsed:
            st = self.chain.status(sig, v, search)
            out.append(None if st is None else fix_status(json.loads(st.to_json())))
        return {"context": context(v), "value": out}

    def get_transaction(self, params: list[Any]) -> Any:
        sig = _signature(_arg(params, 0, str, "signature"))
        raw_cfg = params[1] if len(params) > 1 else None
        cfg = {"encoding": raw_cfg} if isinstance(raw_cfg, str) else _config(params, 1)
        encoding = cfg.get("encoding") or "json"
        if encoding not in ("json", "base64", "base58"):
            raise _invalid(f"encoding {encoding!r} is not served by this cluster (json, base64, base58)")
        max_version = cfg.get("maxSupportedTransactionVersion")
        v = self.view(cfg)
        rec = self.chain.visible(sig, v)
        if rec is None:
            return None
        if isinstance(rec.tx.message, MessageV0) and max_version is None:
            raise RpcError(-32015, _V0_UNSUPPORTED)
        try:
            return transaction_json(rec, encoding)
        except EncodingError as exc:
            raise _invalid(str(exc)) from None

    # ---------------------------------------------------------------------------- accounts
    def get_balance(self, params: list[Any]) -> Any:
        key = _pubkey(_arg(params, 0, str, "pubkey"))
        v = self.view(_config(params, 1))
        return {"context": context(v), "value": self.chain.lamports(key, v)}

    def get_token_account_balance(self, params: list[Any]) -> Any:
        key = _pubkey(_arg(params, 0, str, "pubkey"))
        v = self.view(_config(params, 1))
        acct = self.chain.account(key, v)
        if acct is None:
            raise RpcError(-32602, "Invalid param: could not find account")
        ta = read_token_account(acct)
        decimals = self._decimals(ta.mint) if ta is not None else None
        if ta is None or decimals is None:
            raise RpcError(-32602, "Invalid param: not a Token account")
        return {"context": context(v), "value": _token_amount_json(ta.amount, decimals)}

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = _pubkey(_arg(params, 0, str, "owner"))
        flt = _arg(params, 1, dict, "filter")
        cfg = _config(params, 2)
        v = self.view(cfg)
        encoding = cfg.get("encoding") or "binary"
        if "mint" in flt:
            mint = _pubkey(flt["mint"])
        elif "programId" in flt:
            if _pubkey(flt["programId"]) != TOKEN_PROGRAM_ID:
                raise _invalid("unrecognized Token program id")
            mint = None
        else:
            raise _invalid('the filter must be {"mint": ...} or {"programId": ...}')
        keys = [k for k, _ in self.chain.svm.get_program_accounts(TOKEN_PROGRAM_ID)]
        out = []
        for key in sorted(keys, key=str):
            acct = self.chain.account(key, v)
            ta = read_token_account(acct)
            if ta is None or ta.owner != owner or (mint is not None and ta.mint != mint):
                continue
            out.append({"pubkey": str(key), "account": self._account_json(acct, encoding)})
        return {"context": context(v), "value": out}

    def get_account_info(self, params: list[Any]) -> Any:
        key = _pubkey(_arg(params, 0, str, "pubkey"))
        cfg = _config(params, 1)
        v = self.view(cfg)
        acct = self.chain.account(key, v)
        value = None if acct is None else self._account_json(acct, cfg.get("encoding") or "base58")
        return {"context": context(v), "value": value}

    def get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> Any:
        size = _arg(params, 0, int, "data length")
        if not 0 <= size <= 10 * 1024 * 1024:
            raise _invalid("data length must be in [0, 10 MiB]")
        return self.chain.svm.minimum_balance_for_rent_exemption(size)

    def _decimals(self, mint: Pubkey) -> int | None:
        m = read_mint(self.chain.account(mint))
        return None if m is None else m.decimals

    def _account_json(self, acct: Any, encoding: str) -> dict[str, Any]:
        if encoding == "binary":  # agave's legacy name: plain base58
            encoding = "base58"
        try:
            return account_json(acct, encoding, self._decimals)
        except EncodingError as exc:
            raise _invalid(str(exc)) from None


# ---------------------------------------------------------------------------------- helpers
def _token_amount_json(amount: int, decimals: int) -> dict[str, Any]:
    return json.loads(ui_amount(amount, decimals).to_json())


def _arg(params: list[Any], i: int, kind: type, what: str) -> Any:
    if len(params) <= i:
        raise _invalid(f"missing {what} (parameter {i})")
    value = params[i]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid(f"{what} (parameter {i}) must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _config(params: list[Any], i: int) -> dict[str, Any]:
    if len(params) <= i or params[i] is None:
        return {}
    if not isinstance(params[i], dict):
        raise _invalid(f"the configuration (parameter {i}) must be an object")
    return params[i]


def _pubkey(text: Any) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except (ValueError, TypeError):
        raise _invalid(f"not a base58 public key: {text!r}") from None


def _signature(text: Any) -> Signature:
    try:
        return Signature.from_string(text)
    except (ValueError, TypeError):
        raise _invalid(f"not a base58 signature: {text!r}") from None


def _hash(text: str) -> Hash:
    try:
        return Hash.from_string(text)
    except (ParseHashError, ValueError):
        raise _invalid(f"not a base58 blockhash: {text!r}") from None


def _decode_tx(params: list[Any], cfg: dict[str, Any]) -> VersionedTransaction:
    text = _arg(params, 0, str, "transaction")
    encoding = cfg.get("encoding") or "base58"
    try:
        if encoding == "base64":
            raw = base64.b64decode(text, validate=True)
        elif encoding == "base58":
            raw = b58decode(text)
        else:
            raise _invalid(f"unsupported encoding {encoding!r}: base58 or base64")
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"invalid {encoding}: {exc}") from None
    try:
        tx = VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise _invalid(f"failed to deserialize VersionedTransaction: {exc}") from None
    try:
        tx.sanitize()
    except SanitizeError as exc:
        raise _invalid(f"invalid transaction: {exc}") from None
    if not tx.signatures:
        raise _invalid("a transaction without signatures")
    return tx
