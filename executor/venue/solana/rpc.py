"""The Solana JSON-RPC calls the venue makes, through solana-py's ``AsyncClient``, with every
foreign exception translated once, here (:mod:`executor.venue.errors`).

Translation:

- HTTP errors — 429, 5xx, a refused connection, a timeout — (solana-py ``SolanaRpcException``) →
  :class:`~executor.venue.errors.TemporaryVenueError`: nothing is concluded from a failed call;
- a JSON-RPC error answer (``RPCException``) → ``TemporaryVenueError`` too, except the two that
  mean something: ``sendTransaction``'s preflight failure → :class:`SendRefused` (the node
  simulated the transaction, it failed, and the node did **not** forward it), and "could not find
  account" from ``getTokenAccountBalance`` → ``None`` (no such token account: a balance of 0).

Every read uses commitment ``confirmed``.
"""

from __future__ import annotations

from typing import Any

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TxOpts
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature

from ..errors import TemporaryVenueError

__all__ = ["Rpc", "SendRefused"]


class SendRefused(Exception):
    """``sendTransaction`` refused the transaction at preflight: it was not broadcast.

    Attributes:
        err: the simulation's ``TransactionError`` (solders), or ``None`` when the answer gave none.
        message: the node's message.
    """

    def __init__(self, err: Any, message: str) -> None:
        super().__init__(message)
        self.err = err
        self.message = message


def _temporary(method: str, exc: BaseException) -> TemporaryVenueError:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return TemporaryVenueError(f"{method}: {type(cause).__name__}: {cause}")


class Rpc:
    """One RPC endpoint.

    Args:
        url: the JSON-RPC endpoint (``https://api.devnet.solana.com``, a local cluster's URL).
        timeout_s: per request.
    """

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.url = url
        self.client = AsyncClient(url, commitment=Confirmed, timeout=timeout_s)

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, method: str, coro: Any) -> Any:
        try:
            return await coro
        except (SolanaRpcException, RPCException, OSError, TimeoutError) as exc:
            raise _temporary(method, exc) from exc

    async def genesis_hash(self) -> str:
        """The cluster's genesis hash (which cluster this is)."""
        return str((await self._call("getGenesisHash", self.client.get_genesis_hash())).value)

    async def epoch(self) -> tuple[int, int]:
        """``(absolute slot, block height)`` from one ``getEpochInfo``: read together, so the slot
        is the one at which the height was seen."""
        info = (await self._call("getEpochInfo", self.client.get_epoch_info(Confirmed))).value
        return int(info.absolute_slot), int(info.block_height)

    async def status(self, signature: Signature) -> tuple[Any, int]:
        """``(TransactionStatus or None, context slot)`` of one signature, searching history."""
        resp = await self._call("getSignatureStatuses",
                                self.client.get_signature_statuses([signature], search_transaction_history=True))  # fmt: skip
        return resp.value[0], int(resp.context.slot)

    async def send(self, raw: bytes, *, preflight: bool) -> None:
        """Send the signed bytes (the same bytes are always the same transaction).

        Raises:
            SendRefused: ``preflight`` and the simulation failed (not broadcast).
            TemporaryVenueError: any other failure (nothing concluded: it may have been broadcast).
        """
        opts = TxOpts(skip_preflight=not preflight, skip_confirmation=True, preflight_commitment=Confirmed,
                      max_retries=0)  # fmt: skip
        try:
            await self.client.send_raw_transaction(raw, opts)
        except RPCException as exc:
            answer = exc.args[0] if exc.args else None
            if preflight and isinstance(answer, SendTransactionPreflightFailureMessage):
                err = answer.data.err if answer.data is not None else None
                raise SendRefused(err, answer.message) from None
            raise _temporary("sendTransaction", exc) from exc
        except (SolanaRpcException, OSError, TimeoutError) as exc:
            raise _temporary("sendTransaction", exc) from exc

    async def transaction(self, signature: Signature) -> Any:
        """The landed transaction (``EncodedConfirmedTransactionWithStatusMeta``), or ``None`` when
        this node does not have it (yet)."""
        resp = await self._call("getTransaction", self.client.get_transaction(
            signature, encoding="json", commitment=Confirmed, max_supported_transaction_version=0))  # fmt: skip
        return resp.value

    async def token_balance(self, account: Pubkey) -> tuple[int, int] | None:
        """``(raw amount, decimals)`` of a token account, or ``None`` when it does not exist."""
        try:
            resp = await self.client.get_token_account_balance(account, Confirmed)
        except RPCException as exc:
            if "could not find account" in str(exc).lower():
                return None
            raise _temporary("getTokenAccountBalance", exc) from exc
        except (SolanaRpcException, OSError, TimeoutError) as exc:
            raise _temporary("getTokenAccountBalance", exc) from exc
        return int(resp.value.amount), int(resp.value.decimals)

    async def lamports(self, pubkey: Pubkey) -> int:
        """The SOL balance of ``pubkey``, lamports."""
        return int((await self._call("getBalance", self.client.get_balance(pubkey, Confirmed))).value)
