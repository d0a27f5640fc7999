"""The Solana venue's pure rules: the verdict of one look, the fill from balances, reject codes,
the keypair file, and the cluster guard (issue #15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.account_decoder import UiTokenAmount
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionStatus,
    UiTransactionTokenBalance,
)

from executor.settings import SOLANA_GENESIS, check_solana_cluster
from executor.venue.solana.keys import load_keypair
from executor.venue.solana.outcome import (
    JUPITER_PROGRAM,
    Expired,
    Landed,
    Pending,
    judge,
    reject_code,
    swap_fill,
)
from foundation.errors import ConfigError
from protocol import Instrument, InstrumentKind, LocalProtocolError, RejectCode

TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
COMPUTE = "ComputeBudget111111111111111111111111111111"


def status(level: TransactionConfirmationStatus | None, err: object = None, slot: int = 90) -> TransactionStatus:
    return TransactionStatus(slot, None, None, err, level)


def test_a_confirmed_status_is_landed_with_its_error() -> None:
    assert judge(100, 95, 95, status(TransactionConfirmationStatus.Confirmed), 95) == Landed(90)
    failed = TransactionErrorInstructionError(1, InstructionErrorCustom(1))
    assert judge(100, 95, 95, status(TransactionConfirmationStatus.Finalized, failed), 95) == Landed(90, failed)


def test_a_processed_status_is_not_yet_a_verdict() -> None:
    assert isinstance(judge(100, 95, 95, status(TransactionConfirmationStatus.Processed), 95), Pending)


def test_expiry_needs_the_height_past_and_a_status_node_that_saw_it() -> None:
    """No status: expired only past lastValidBlockHeight, at a node whose context reached the slot
    where that height was read (a lagging node proves nothing)."""
    assert isinstance(judge(100, 120, 100, None, 130), Pending)  # height not past
    assert isinstance(judge(100, 120, 101, None, 119), Pending)  # the status node lags
    assert judge(100, 120, 101, None, 120) == Expired(101, 100)


@given(lvbh=st.integers(0, 10**9), slot=st.integers(0, 10**9), height=st.integers(0, 10**9),
       ctx=st.integers(0, 10**9))  # fmt: skip
def test_nothing_is_ever_called_expired_that_may_land(lvbh: int, slot: int, height: int, ctx: int) -> None:
    """Property: Expired only when height > lvbh and ctx >= slot; a status is never Expired."""
    verdict = judge(lvbh, slot, height, None, ctx)
    assert isinstance(verdict, Expired) == (height > lvbh and ctx >= slot)
    assert not isinstance(judge(lvbh, slot, height, status(TransactionConfirmationStatus.Confirmed), ctx), Expired)


def _balance(index: int, mint: str, owner: str, raw: int, decimals: int) -> UiTransactionTokenBalance:
    ui = UiTokenAmount(raw / 10**decimals, decimals, str(raw), str(raw / 10**decimals))
    return UiTransactionTokenBalance(index, Pubkey.from_string(mint), ui, Pubkey.from_string(owner), Pubkey.from_string(TOKEN))


class Meta:
    def __init__(self, pre: list, post: list, fee: int) -> None:
        self.pre_token_balances, self.post_token_balances, self.fee = pre, post, fee


BASE, QUOTE = str(Keypair().pubkey()), str(Keypair().pubkey())
ME, MAKER = str(Keypair().pubkey()), str(Keypair().pubkey())


def test_the_fill_is_the_owners_deltas() -> None:
    """A buy of 0.021 base (8 decimals) for 1000.5 quote (6 decimals): the maker's side is ignored."""
    pre = [_balance(1, QUOTE, ME, 5_000_000_000, 6), _balance(2, BASE, ME, 0, 8), _balance(3, BASE, MAKER, 10**12, 8)]
    post = [_balance(1, QUOTE, ME, 3_999_500_000, 6), _balance(2, BASE, ME, 2_100_000, 8),
            _balance(3, BASE, MAKER, 10**12 - 2_100_000, 8)]  # fmt: skip
    fill = swap_fill(Meta(pre, post, 5_000), ME, BASE, QUOTE)
    assert (fill.base_delta, fill.quote_delta, fill.fee_lamports) == (2_100_000, -1_000_500_000, 5_000)
    assert fill.quantity(8) == 0.021 and fill.avg_price(8, 6) == pytest.approx(1000.5 / 0.021)


def test_a_swap_that_moved_another_token_is_refused() -> None:
    other = str(Keypair().pubkey())
    with pytest.raises(ValueError, match="other tokens"):
        swap_fill(Meta([_balance(1, other, ME, 5, 0)], [_balance(1, other, ME, 0, 0)], 5_000), ME, BASE, QUOTE)


MINE, THEIRS = frozenset({ME, "x"}), frozenset({MAKER, "y"})


@pytest.mark.parametrize(("err", "instructions", "code"), [
    (TransactionErrorFieldless.InsufficientFundsForFee, [], RejectCode.INSUFFICIENT_FUNDS),
    (TransactionErrorInstructionError(2, InstructionErrorCustom(1)),
     [(COMPUTE, frozenset()), (TOKEN, THEIRS), (TOKEN, MINE)], RejectCode.INSUFFICIENT_FUNDS),
    (TransactionErrorInstructionError(1, InstructionErrorCustom(1)),  # the counterparty's shortfall
     [(TOKEN, MINE), (TOKEN, THEIRS)], RejectCode.VENUE_ERROR),
    (TransactionErrorInstructionError(1, InstructionErrorCustom(6001)),
     [(COMPUTE, frozenset()), (JUPITER_PROGRAM, MINE)], RejectCode.SLIPPAGE_EXCEEDED),
    (TransactionErrorInstructionError(1, InstructionErrorCustom(4)), [(COMPUTE, frozenset()), (TOKEN, MINE)],
     RejectCode.VENUE_ERROR),
    (TransactionErrorInstructionError(7, InstructionErrorCustom(1)), [(TOKEN, MINE)], RejectCode.VENUE_ERROR),
    (TransactionErrorFieldless.AccountInUse, [(TOKEN, MINE)], RejectCode.VENUE_ERROR),
])  # fmt: skip
def test_reject_codes(err: object, instructions: list[tuple[str, frozenset[str]]], code: RejectCode) -> None:
    assert reject_code(err, instructions, ME) is code


def test_a_keypair_file_is_read_only_when_private_and_well_formed(tmp_path: Path) -> None:
    kp = Keypair()
    path = tmp_path / "id.json"
    path.write_text(json.dumps(list(bytes(kp))))
    path.chmod(0o600)
    assert load_keypair(path).pubkey() == kp.pubkey()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="permissions 0644 .* too open"):
        load_keypair(path)
    for bad in ("[1, 2, 3]", "not json", json.dumps([256] * 64), json.dumps([True] * 64)):
        path.write_text(bad)
        path.chmod(0o600)
        with pytest.raises(ConfigError, match="not a Solana keypair file") as err:
            load_keypair(path)
        assert bad not in str(err.value)  # the content is never echoed


def test_the_cluster_guard_checks_the_genesis_hash() -> None:
    main, dev = SOLANA_GENESIS["mainnet-beta"], SOLANA_GENESIS["devnet"]
    assert check_solana_cluster(dev, "devnet", live=False) is None
    assert check_solana_cluster(main, "mainnet-beta", live=True) is None
    assert "pass --live" in check_solana_cluster(main, "mainnet-beta", live=False)
    assert "serves mainnet-beta" in check_solana_cluster(main, "devnet", live=False)
    assert "serves devnet" in check_solana_cluster(dev, "localnet", live=False)
    assert check_solana_cluster("SomeLocalGenesis11111111111111111111111111", "localnet", live=False) is None


def test_an_instrument_text_is_a_mint_or_a_symbol() -> None:
    usdc = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert Instrument.parse(usdc) == Instrument.mint(usdc) and Instrument.parse(usdc).kind is InstrumentKind.MINT
    for symbol in ("BTC/USDT", "BTC-PERP", "BTC/USDT:USDT", "BTCUSDT"):
        assert Instrument.parse(symbol) == Instrument.symbol(symbol)
    with pytest.raises(LocalProtocolError):
        Instrument.parse("x" * 45)


MINT_TEXT = "AMV25WH4hF6jB1q5GrtdEj7GLHfF2EnkVK56hjFmMRMr"


@pytest.mark.parametrize(("argv", "message"), [
    (["--venue=solana", f"--instrument={MINT_TEXT}"], "solana_rpc_url, solana_keypair_file: venue=solana needs both"),
    (["--venue=solana", f"--instrument={MINT_TEXT}", "--solana-rpc-url=http://x", "--solana-keypair-file=k",
      "--solana-cluster=mainnet-beta"], "mainnet-beta trades real money: pass --live"),
    (["--venue=solana", f"--instrument={MINT_TEXT}", "--solana-rpc-url=http://x", "--solana-keypair-file=k", "--live"],
     "--live trades real money on mainnet-beta, the settings say devnet"),
    (["--venue=solana", "--instrument=BTC/USDT", "--solana-rpc-url=http://x", "--solana-keypair-file=k"],
     "instrument: venue=solana trades a mint"),
    (["--venue=solana-emulator", f"--instrument={MINT_TEXT}", "--solana-rpc-url=http://x", "--solana-keypair-file=k"],
     "emulator_port: venue=solana-emulator needs"),
])  # fmt: skip
def test_unsafe_or_incomplete_solana_settings_are_refused(argv: list[str], message: str) -> None:
    from executor.settings import ExecutorSettings
    from foundation.settings import load_settings

    settings = load_settings(ExecutorSettings, argv, "tandem executor")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.check_venue()


def test_a_live_feed_for_a_mint_needs_the_symbol_of_the_same_asset() -> None:
    from brain.settings import BrainSettings
    from foundation.settings import load_settings

    with pytest.raises(ConfigError, match="feed_symbol: the instrument is a Solana mint"):
        load_settings(BrainSettings, ["--feed=live", f"--instrument={MINT_TEXT}"], "tandem brain")
    ok = load_settings(BrainSettings, ["--feed=live", f"--instrument={MINT_TEXT}", "--feed-symbol=BTC/USDT"], "tandem brain")
    assert ok.market_symbol() == "BTC/USDT" and ok.brain_config().instrument == Instrument.mint(MINT_TEXT)
