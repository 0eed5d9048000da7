from pathlib import Path

import msgspec
import pytest

from mm.config import Config, decode_config, dump_toml, load_config, with_param
from mm.errors import ConfigError

RISK = b"[risk]\nmax_order_lot=1\nmax_position_lot=1\nmax_notional_quote=1.0\nprice_band_bps=1.0\n" \
       b"max_orders_per_s=1.0\nmax_book_age_ms=1.0\nmax_signal_age_ms=1.0\n"


def test_load_config_default_is_valid_sim():
    config = load_config()
    assert config.pipeline.mode == "sim"
    assert config.metrics.port == 9309


def test_decode_config_unknown_key_names_key_and_file():
    with pytest.raises(ConfigError) as err:
        decode_config(RISK + b"[quoter]\nhalf_spred_bps = 3\n", "site.toml")
    assert "site.toml" in str(err.value) and "half_spred_bps" in str(err.value) and "$.quoter" in str(err.value)


def test_decode_config_bad_value_names_key():
    with pytest.raises(ConfigError) as err:
        decode_config(RISK.replace(b"max_order_lot=1", b"max_order_lot=-5"), "x.toml")
    assert "max_order_lot" in str(err.value) and "x.toml" in str(err.value)


def test_decode_config_missing_risk_limits_is_error():
    with pytest.raises(ConfigError) as err:
        decode_config(b"[pipeline]\nname='a'\n", "x.toml")
    assert "risk" in str(err.value)


def test_decode_config_bad_toml_syntax_is_error():
    with pytest.raises(ConfigError) as err:
        decode_config(b"[risk\n", "broken.toml")
    assert "broken.toml" in str(err.value)


def test_decode_config_zero_tick_size_is_error():
    with pytest.raises(ConfigError) as err:
        decode_config(RISK + b"[instrument]\ntick_size='0'\n", "x.toml")
    assert "tick_size" in str(err.value)


def test_shutdown_deadline_shorter_than_a_one_program_stop_is_error():
    """A stage stopped alone waits 4 of its upstream's heartbeats (mm/shutdown.py) within the deadline."""
    with pytest.raises(ConfigError) as err:
        decode_config(RISK + b"[ipc]\nheartbeat_interval_s = 1.5\nshutdown_deadline_s = 5.0\n", "slow.toml")
    assert "slow.toml" in str(err.value) and "shutdown_deadline_s" in str(err.value) \
        and "heartbeat_interval_s" in str(err.value)
    config = decode_config(RISK + b"[ipc]\nheartbeat_interval_s = 1.5\nshutdown_deadline_s = 8.0\n", "ok.toml")
    assert config.ipc.shutdown_deadline_s == 8.0


def test_load_config_missing_file_names_path(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(err.value)


def test_with_param_valid_value_applies():
    config = with_param(load_config(), "quoter.size_lot", "250")
    assert config.quoter.size_lot == 250


@pytest.mark.parametrize("key,value,fragment", [
    ("quoter.size_lot", "-1", "size_lot"),
    ("quoter.size_lot", "abc", "not a number"),
    ("quoter.nope", "1", "not a runtime parameter"),
    ("pipeline.name", "x", "not a runtime parameter"),
])
def test_with_param_invalid_raises_naming_key(key: str, value: str, fragment: str):
    with pytest.raises(ConfigError) as err:
        with_param(load_config(), key, value)
    assert fragment in str(err.value)


def test_dump_toml_round_trips():
    config = load_config()
    assert decode_config(dump_toml(config).encode(), "dump") == config
    assert isinstance(msgspec.to_builtins(config), dict)
    assert isinstance(config, Config)

