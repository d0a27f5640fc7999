"""Brain settings for protective stops: defaults, env, flags, bounds, and the flags tandem paper passes on."""

from __future__ import annotations

import pytest

from brain.settings import BrainSettings
from foundation.errors import ConfigError
from foundation.settings import load_settings
from tandem.children import child_flags
from tandem.paper import PaperSettings


def test_exchange_stops_defaults_off_with_a_25_bps_step() -> None:
    """By default the brain sends no PROTECT (exchange_stops off) and the step is 25 bps."""
    s = load_settings(BrainSettings, [], "tandem brain")
    config = s.brain_config()
    assert (s.exchange_stops, s.protect_step_bps) == (False, 25.0)
    assert (config.exchange_stops, config.protect_step_bps) == (False, 25.0)


def test_exchange_stops_from_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """--exchange-stops / TANDEM_EXCHANGE_STOPS turn it on; --protect-step-bps sets the step."""
    s = load_settings(BrainSettings, ["--exchange-stops", "--protect-step-bps", "10"], "tandem brain")
    assert s.brain_config().exchange_stops and s.brain_config().protect_step_bps == 10.0
    monkeypatch.setenv("TANDEM_EXCHANGE_STOPS", "true")
    assert load_settings(BrainSettings, [], "tandem brain").exchange_stops
    assert not load_settings(BrainSettings, ["--no-exchange-stops"], "tandem brain").exchange_stops


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_protect_step_must_be_positive(bad: str) -> None:
    """A step of 0 or less fails at start, naming the setting, its env variable and its flag."""
    with pytest.raises(ConfigError, match="protect_step_bps.*TANDEM_PROTECT_STEP_BPS.*--protect-step-bps"):
        load_settings(BrainSettings, ["--protect-step-bps", bad], "tandem brain")


@pytest.mark.parametrize("on", [False, True])
def test_paper_passes_exchange_stops_to_the_brain(on: bool) -> None:
    """tandem paper hands a boolean on as --exchange-stops / --no-exchange-stops, which the brain parses back."""
    paper = load_settings(PaperSettings, ["--exchange-stops"] if on else [], "tandem paper")
    flags = child_flags(paper, BrainSettings)
    assert ("--exchange-stops" if on else "--no-exchange-stops") in flags
    brain = load_settings(BrainSettings, flags, "tandem brain")
    assert brain.exchange_stops is on and brain.protect_step_bps == 25.0
