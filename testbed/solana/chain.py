"""Sans-IO model of a Solana cluster over solders' LiteSVM: blocks, blockhashes, landing, history.

No sockets and no wall clock: the server's block ticker calls :meth:`Chain.advance`; the RPC
(:mod:`.rpc`) and the swap service (:mod:`.swap`) call the rest.

Rules (and where they come from):

* **Blocks.** One block per :meth:`Chain.advance`; slot == block height (no skipped slots),
  starting at :data:`GENESIS_HEIGHT`. Each block gets a new blockhash (``LiteSVM.expire_blockhash``).
* **Blockhash window.** A blockhash issued at height ``h`` is valid while ``height <= h + 150``
  (:data:`VALID_BLOCKS`; agave ``MAX_PROCESSING_AGE`` = 150 and the RPC's
  ``lastValidBlockHeight`` = ``h + 150``). LiteSVM itself only knows its latest hash, so it runs
  with its blockhash check off and this module enforces the window.
* **Landing** (:meth:`Chain.land`). A transaction executes at once, in the current block, when its
  blockhash is valid, every signature verifies and its signature has not landed before. It lands
  (is recorded, the fee is charged) when it succeeds or fails with an instruction error or
  ``InsufficientFundsForRent`` (errors raised after fees are collected). Any other error (fee
  payer missing or too poor, ``AlreadyProcessed``, ...) means a leader would drop it: nothing is
  recorded and nothing is charged (agave: transactions that fail fee validation are not
  committed). A landed signature never executes again (``AlreadyProcessed``).
* **Records** (:class:`Landed`): slot, the transaction, err, fee in lamports as LiteSVM charged
  it (5000 per signature + ``ceil(cu_price_micro_lamports * cu_limit / 1e6)``), logs, compute
  units, pre/post lamports of every static account key and pre/post token balances of the keys
  that are token accounts (like agave's ``collect_token_balances``; keys loaded through address
  lookup tables are not covered: this cluster's transactions use none).
* **Statuses** (:meth:`Chain.status`): "confirmed" as soon as landed, "finalized" once
  :data:`FINALIZED_DEPTH` = 32 blocks deep (``MAX_LOCKOUT_HISTORY`` 31 + 1; ``confirmations`` is
  null then); without ``searchTransactionHistory`` only the last :data:`STATUS_CACHE_SLOTS` = 300
  slots are searched (agave's status cache, ``MAX_CACHE_ENTRIES`` = ``MAX_RECENT_BLOCKHASHES`` = 300).
* **Views.** Reads take a height ``at`` (a lagging node's view): an account's state at ``at`` is
  its last write at or before ``at`` (every write through this class is logged per height).
* **Doomed transactions** (:meth:`Chain.doom`, the ``fail_swaps`` fault): when a doomed message
  lands, one account (the maker's token account of the output mint) is emptied for the duration
  of its execution, as if the maker's inventory had moved between the quote and the landing.
  The swap's maker leg then fails with Token ``InsufficientFunds`` (``Custom(1)``), the whole
  transaction rolls back, the fee is charged; the account gets its balance back afterwards.
  Simulation (and so preflight) runs on honest state and passes, as it did on the RPC node.

Errors: misuse (an unknown account for a balance write, an amount outside u64) raises ``ValueError``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from solders.account import Account
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
    TransactionStatus,
    UiTransactionTokenBalance,
)

from .keys import TOKEN_PROGRAM_ID
from .tokens import U64_MAX, read_mint, read_token_account, ui_amount, with_amount

__all__ = [
    "FINALIZED_DEPTH", "GENESIS_HEIGHT", "STATUS_CACHE_SLOTS", "VALID_BLOCKS", "Chain", "Landed", "Simulation",
]

GENESIS_HEIGHT = 1
VALID_BLOCKS = 150
FINALIZED_DEPTH = 32
STATUS_CACHE_SLOTS = 300

_CHARGED_ERRORS = (TransactionErrorInstructionError, TransactionErrorInsufficientFundsForRent)


@dataclass(frozen=True, slots=True)
class Landed:
    """A transaction that landed: what ``getTransaction`` and ``getSignatureStatuses`` report.

    Lamport lists follow the message's static account keys; token balance lists hold the keys
    that are token accounts (``account_index`` into those keys).
    """

    signature: Signature
    slot: int
    tx: VersionedTransaction
    err: TransactionErrorType | None
    fee: int
    logs: tuple[str, ...]
    units: int
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]
    pre_token_balances: tuple[UiTransactionTokenBalance, ...]
    post_token_balances: tuple[UiTransactionTokenBalance, ...]


@dataclass(frozen=True, slots=True)
class Simulation:
    """Outcome of :meth:`Chain.simulate`: ``err`` None when it would succeed; ``replacement``
    is ``(blockhash, lastValidBlockHeight)`` when the blockhash was replaced."""

    err: TransactionErrorType | None
    logs: tuple[str, ...]
    units: int
    fee: int
    replacement: tuple[Hash, int] | None = None


class Chain:
    """The cluster state: a LiteSVM bank, the block height, blockhashes, landed transactions."""

    def __init__(self) -> None:
        self.svm = LiteSVM().with_blockhash_check(False).with_sigverify(False)
        self.height = GENESIS_HEIGHT
        first = self.svm.latest_blockhash()
        self._hashes: list[Hash] = [first]  # index: height - GENESIS_HEIGHT
        self._issued: dict[Hash, int] = {first: GENESIS_HEIGHT}
        self.landed: dict[Signature, Landed] = {}
        self._slots: list[int] = []  # landing slot of each landed tx, in landing order (for counts at a view)
        self._writes: dict[Pubkey, tuple[list[int], list[Account | None]]] = {}
        self._doomed: dict[bytes, Pubkey] = {}

    # ------------------------------------------------------------------------------ blocks
    def advance(self, blocks: int = 1) -> int:
        """Produce ``blocks`` new blocks (each with a new blockhash); returns the new height."""
        for _ in range(blocks):
            self.height += 1
            self.svm.expire_blockhash()
            bh = self.svm.latest_blockhash()
            self._hashes.append(bh)
            self._issued[bh] = self.height
        return self.height

    def blockhash_at(self, height: int) -> Hash:
        """The blockhash of block ``height`` (clamped to genesis .. tip)."""
        h = min(max(height, GENESIS_HEIGHT), self.height)
        return self._hashes[h - GENESIS_HEIGHT]

    def last_valid_height(self, blockhash: Hash) -> int | None:
        """``lastValidBlockHeight`` of ``blockhash`` (issued + 150), None when this chain never issued it."""
        issued = self._issued.get(blockhash)
        return None if issued is None else issued + VALID_BLOCKS

    def blockhash_valid(self, blockhash: Hash, at: int | None = None) -> bool:
        """Whether ``blockhash`` is known and not expired at height ``at`` (default: the tip)."""
        at = self.height if at is None else at
        issued = self._issued.get(blockhash)
        return issued is not None and issued <= at <= issued + VALID_BLOCKS

    # ----------------------------------------------------------------------------- accounts
    def account(self, key: Pubkey, at: int | None = None) -> Account | None:
        """``key``'s account at height ``at`` (default: the tip); None when it does not exist."""
        log = self._writes.get(key)
        if at is None or at >= self.height or log is None:
            return self.svm.get_account(key)
        heights, states = log
        return states[bisect.bisect_right(heights, at) - 1]

    def lamports(self, key: Pubkey, at: int | None = None) -> int:
        acct = self.account(key, at)
        return 0 if acct is None else acct.lamports

    def token_amount(self, key: Pubkey, at: int | None = None) -> int:
        """Raw units in token account ``key`` (0 when it is not a token account)."""
        ta = read_token_account(self.account(key, at))
        return 0 if ta is None else ta.amount

    def set_account(self, key: Pubkey, account: Account) -> None:
        """Write ``account`` at ``key`` now (logged for lagging views)."""
        before = self.svm.get_account(key)
        self.svm.set_account(key, account)
        self._log_write(key, before, account)

    def set_lamports(self, key: Pubkey, lamports: int) -> None:
        """Set ``key``'s SOL balance (a new system account when missing).

        Raises:
            ValueError: ``lamports`` outside u64.
        """
        if not 0 <= lamports <= U64_MAX:
            raise ValueError(f"lamports {lamports} outside u64")
        acct = self.svm.get_account(key)
        if acct is None:
            new = Account(lamports, b"", SYSTEM_PROGRAM_ID, False, 0)
        else:
            new = Account(lamports, bytes(acct.data), acct.owner, acct.executable, acct.rent_epoch)
        self.set_account(key, new)

    def set_token_amount(self, key: Pubkey, amount: int) -> None:
        """Set the raw amount held by token account ``key``.

        Raises:
            ValueError: ``key`` is not a token account, or ``amount`` is outside u64.
        """
        acct = self.svm.get_account(key)
        if acct is None:
            raise ValueError(f"no account at {key}")
        self.set_account(key, with_amount(acct, amount))

    def _log_write(self, key: Pubkey, before: Account | None, after: Account | None) -> None:
        log = self._writes.get(key)
        if log is None:
            log = self._writes[key] = ([GENESIS_HEIGHT - 1], [before])
        heights, states = log
        if heights[-1] == self.height:
            states[-1] = after
        else:
            heights.append(self.height)
            states.append(after)

    def token_balances(self, keys: list[Pubkey], accounts: list[Account | None]) -> tuple[UiTransactionTokenBalance, ...]:
        """``UiTransactionTokenBalance`` of each of ``keys`` whose account is a token account."""
        out = []
        for i, (key, acct) in enumerate(zip(keys, accounts, strict=True)):
            ta = read_token_account(acct)
            if ta is None:
                continue
            mint = read_mint(self.svm.get_account(ta.mint))
            decimals = 0 if mint is None else mint.decimals
            out.append(UiTransactionTokenBalance(i, ta.mint, ui_amount(ta.amount, decimals), ta.owner, TOKEN_PROGRAM_ID))
        return tuple(out)

    # -------------------------------------------------------------------------- transactions
    @staticmethod
    def signatures_valid(tx: VersionedTransaction) -> bool:
        """Every required signature is present and verifies against the message."""
        return len(tx.signatures) == tx.message.header.num_required_signatures and all(tx.verify_with_results())

    def doom(self, message: MessageV0, drain: Pubkey) -> None:
        """Make ``message`` fail when it lands: token account ``drain`` is empty while it executes."""
        self._doomed[bytes(to_bytes_versioned(message))] = drain

    def simulate(self, tx: VersionedTransaction, replace_blockhash: bool = False) -> Simulation:
        """Run ``tx`` against the tip without committing anything (signatures are not checked).

        ``err`` is ``BlockhashNotFound`` for an unknown or expired blockhash (unless
        ``replace_blockhash``: the tip's blockhash is used instead) and ``AlreadyProcessed`` for
        a landed signature; otherwise LiteSVM's verdict.
        """
        replacement = None
        if replace_blockhash:
            bh = self.blockhash_at(self.height)
            m, h = tx.message, tx.message.header
            if isinstance(m, MessageV0):
                msg: MessageV0 | Message = MessageV0(h, list(m.account_keys), bh, list(m.instructions),
                                                     list(m.address_table_lookups))  # fmt: skip
            else:
                msg = Message.new_with_compiled_instructions(
                    h.num_required_signatures, h.num_readonly_signed_accounts, h.num_readonly_unsigned_accounts,
                    list(m.account_keys), bh, list(m.instructions))  # fmt: skip
            tx = VersionedTransaction.populate(msg, list(tx.signatures))
            replacement = (bh, self.height + VALID_BLOCKS)
        elif not self.blockhash_valid(tx.message.recent_blockhash):
            return Simulation(TransactionErrorFieldless.BlockhashNotFound, (), 0, 0)
        if tx.signatures[0] in self.landed:
            return Simulation(TransactionErrorFieldless.AlreadyProcessed, (), 0, 0, replacement)
        res = self.svm.simulate_transaction(tx)
        meta = res.meta()
        err = res.err() if isinstance(res, FailedTransactionMetadata) else None
        return Simulation(err, tuple(meta.logs()), meta.compute_units_consumed(), meta.fee(), replacement)

    def land(self, tx: VersionedTransaction) -> Landed | None:
        """Execute ``tx`` in the current block; its record, or None when it does not land (see the
        module's landing rule: nothing is changed or charged then)."""
        sig = tx.signatures[0]
        if sig in self.landed or not self.blockhash_valid(tx.message.recent_blockhash):
            return None
        if not self.signatures_valid(tx):
            return None
        keys = list(tx.message.account_keys)
        before = [self.svm.get_account(k) for k in keys]
        msg_key = bytes(to_bytes_versioned(tx.message))
        drain = self._doomed.pop(msg_key, None)
        saved = self.svm.get_account(drain) if drain is not None else None
        if drain is not None and saved is not None:
            self.svm.set_account(drain, with_amount(saved, 0))
        res = self.svm.send_transaction(tx)
        if drain is not None and saved is not None:  # give the maker its inventory back (plus what it got)
            moved = self.token_amount(drain)
            self.svm.set_account(drain, with_amount(saved, read_token_account(saved).amount + moved))
        failed = isinstance(res, FailedTransactionMetadata)
        err = res.err() if failed else None
        if failed and not isinstance(err, _CHARGED_ERRORS):
            if drain is not None:
                self._doomed[msg_key] = drain
            return None
        meta = res.meta() if failed else res
        after = [self.svm.get_account(k) for k in keys]
        for k, b, a in zip(keys, before, after, strict=True):
            if a != b:
                self._log_write(k, b, a)
        rec = Landed(
            signature=sig, slot=self.height, tx=tx, err=err, fee=meta.fee(), logs=tuple(meta.logs()),
            units=meta.compute_units_consumed(),
            pre_balances=tuple(0 if a is None else a.lamports for a in before),
            post_balances=tuple(0 if a is None else a.lamports for a in after),
            pre_token_balances=self.token_balances(keys, before), post_token_balances=self.token_balances(keys, after),
        )  # fmt: skip
        self.landed[sig] = rec
        self._slots.append(self.height)
        return rec

    def visible(self, sig: Signature, at: int) -> Landed | None:
        """``sig``'s record if it landed at or before height ``at``."""
        rec = self.landed.get(sig)
        return rec if rec is not None and rec.slot <= at else None

    def status(self, sig: Signature, at: int, search_history: bool) -> TransactionStatus | None:
        """``getSignatureStatuses`` entry for ``sig`` seen from height ``at`` (see the module's rules)."""
        rec = self.visible(sig, at)
        if rec is None:
            return None
        depth = at - rec.slot
        if not search_history and depth > STATUS_CACHE_SLOTS:
            return None
        if depth >= FINALIZED_DEPTH:
            return TransactionStatus(rec.slot, None, None, rec.err, TransactionConfirmationStatus.Finalized)
        return TransactionStatus(rec.slot, depth, None, rec.err, TransactionConfirmationStatus.Confirmed)

    def transaction_count(self, at: int) -> int:
        """Landed transactions at or before height ``at``."""
        return bisect.bisect_right(self._slots, at)
