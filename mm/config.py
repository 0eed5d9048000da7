"""The one config of a pipeline: a TOML file decoded into frozen msgspec Structs.

Every process loads the same file. Unknown keys and bad values fail before any socket opens,
with one line naming the file and the key. Risk limits have no defaults. Secrets never live here.
"""

from __future__ import annotations

import getpass
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from mm.errors import ConfigError
from mm.shutdown import STAYING_AFTER_HEARTBEATS

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.toml")

Core = Annotated[int, Meta(ge=-1, le=1023)]  # -1 = not pinned
Nice = Annotated[int, Meta(ge=0, le=19)]  # raised niceness: a stage off the critical path yields the CPU to those on it
PositiveInt = Annotated[int, Meta(gt=0)]
NonNegInt = Annotated[int, Meta(ge=0)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Bps = Annotated[float, Meta(ge=-100, le=1_000)]
Ratio = Annotated[float, Meta(ge=0, le=1)]
DecimalText = Annotated[str, Meta(pattern=r"^[0-9]+(\.[0-9]+)?$")]
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section."""


class PipelineConfig(Section):
    name: Name = "default"
    mode: Literal["sim", "replay", "paper", "live"] = "sim"
    run_dir: str = ""  # "" = /tmp/mm-$USER/<name>
    journal_dir: str = ""  # "" = the run dir; risk's journal (fills, position, operator audit) lives here
    journal_fsync: Literal["always", "interval_ms", "never"] = "interval_ms"
    journal_fsync_interval_ms: PositiveInt = 50
    restart_dead: bool = False  # `mm run` restarts a process that died, as supervisord's autorestart does


class InstrumentConfig(Section):
    symbol: Name = "BTCUSDT"
    tick_size: DecimalText = "0.01"
    lot_size: DecimalText = "0.00001"
    # the venue and market it trades on: picks the standard fee tier (mm/fees.py); a replay reads it off the capture
    market: Literal["binance_spot", "binance_usdm", "binance_coinm", "hyperliquid", "okx_spot", "okx_swap",
                    "kraken_spot", "other"] = "binance_spot"

    def __post_init__(self) -> None:
        if Decimal(self.tick_size) <= 0:
            raise ValueError(f"'tick_size' must be > 0, was {self.tick_size}")
        if Decimal(self.lot_size) <= 0:
            raise ValueError(f"'lot_size' must be > 0, was {self.lot_size}")


class IpcConfig(Section):
    transport: Literal["ipc", "tcp"] = "ipc"
    tcp_host: str = "127.0.0.1"
    tcp_base_port: Annotated[int, Meta(ge=1024, le=65000)] = 17300
    hwm: NonNegInt = 0  # 0 = no limit: the pipeline never drops market data or orders
    heartbeat_interval_s: Annotated[float, Meta(gt=0, le=10)] = 0.1
    liveness: Annotated[int, Meta(ge=1, le=100)] = 3
    startup_timeout_s: PositiveFloat = 30.0
    shutdown_deadline_s: PositiveFloat = 5.0
    order_linger_ms: NonNegInt = 1000
    curve_keys_dir: str = ""  # tcp: the control endpoint needs CURVE keys (`mm keys console --dir D`)
    # feed -> book -> quoter (and signal) -> risk -> gateway: shared-memory rings with an eventfd
    # doorbell (ipc/shm_channel.py), or ZeroMQ like everything else; tcp always uses ZeroMQ
    critical_path: Literal["shm", "zmq"] = "shm"
    critical_spin_us: NonNegInt = 0  # spin this long on the shm inputs before blocking: a core per process only

    def __post_init__(self) -> None:
        # a stage stopping alone waits this many of its upstream's heartbeats before it takes that
        # upstream for one that stays up (mm/shutdown.py), and must then still drain and close in time
        staying_s = (STAYING_AFTER_HEARTBEATS + 1) * self.heartbeat_interval_s
        if self.shutdown_deadline_s <= staying_s:
            raise ValueError(f"'shutdown_deadline_s' ({self.shutdown_deadline_s:g} s) must exceed "
                             f"{STAYING_AFTER_HEARTBEATS + 1} x 'heartbeat_interval_s' ({staying_s:g} s): a "
                             f"program stopped alone would run out of time before it sees its upstream stay up")
        if self.transport == "tcp" and not self.curve_keys_dir:
            raise ValueError("'curve_keys_dir' is required when transport = \"tcp\": the console endpoint "
                             "must not be open on the network without CURVE keys")


class SimConfig(Section):
    """The built-in simulated market (feed side) and its realism knobs."""

    seed: int = 7
    start_px: PositiveFloat = 60_000.0
    vol_bps_per_s: PositiveFloat = 1.2  # calm-regime 1 s mid-return std
    high_vol_multiplier: Annotated[float, Meta(ge=1)] = 3.0
    regime_switch_per_min: NonNegFloat = 0.5
    jump_per_min: NonNegFloat = 0.3
    jump_bps: NonNegFloat = 8.0
    trades_per_s: PositiveFloat = 30.0
    depth_updates_per_s: PositiveFloat = 10.0
    levels: Annotated[int, Meta(ge=5, le=1000)] = 200
    paced: bool = True  # False: generate as fast as the pipeline takes it


class FeedConfig(Section):
    cpu: Core = -1
    nice: Nice = 0
    # paper / live: the venue's combined websocket streams and REST snapshots (TLS for real hosts)
    venue: Literal["binance", "hyperliquid"] = "binance"  # hyperliquid: /ws l2Book + trades, /info meta
    ws_url: str = ""  # e.g. wss://stream.binance.com:9443, wss://api.hyperliquid.xyz/ws, ws://127.0.0.1:9900
    rest_url: str = ""  # e.g. https://api.binance.com, https://api.hyperliquid.xyz, or http://127.0.0.1:9901
    depth_stream: str = "depth@100ms"
    trade_stream: str = "trade"
    silent_s: PositiveFloat = 10.0  # connected but no frame for this long: reconnect
    ping_interval_s: Annotated[float, Meta(gt=0, le=59)] = 50.0  # hyperliquid: JSON ping (it closes after 60 s idle)
    snapshot_limit: Annotated[int, Meta(ge=5, le=5000)] = 1000
    synthetic_hz: NonNegFloat = 0.0  # > 0: a paced synthetic ladder instead of the sim (latency bench)
    synthetic_events: NonNegInt = 0  # how many synthetic events before end of stream (0 = until stopped)


class BookConfig(Section):
    cpu: Core = -1
    nice: Nice = 0
    depth: Annotated[int, Meta(ge=1, le=100)] = 20
    trade_ring_capacity: PositiveInt = 4096
    shadow_every_s: NonNegFloat = 30.0  # paper / live: compare the live book with a fresh REST snapshot (0 = off)


class SignalConfig(Section):
    """Features, the online RLS model, its delayed labels and self-check (mm/signal.py)."""

    cpu: Core = -1
    nice: Nice = 10
    imbalance_levels: Annotated[int, Meta(ge=1, le=50)] = 5
    ewma_halflife_s: PositiveFloat = 2.0  # the reported EWMA of the mid
    vol_halflife_s: PositiveFloat = 30.0
    imbalance_coef_bps: float = 0.5  # model = "imbalance": predicted bps per unit of imbalance
    vol_prior_bps_per_s: PositiveFloat = 1.2
    # "experts": the aggregation of the experts (mm/experts.py); "rls": the RLS expert alone (the
    # default: on the two long captures the aggregation still scores below issue 5's first-half
    # imbalance fit, tests/replay/test_strategy_eval.py, where the RLS alone beats it);
    # "imbalance": the fixed linear rule, no learning
    model: Literal["experts", "rls", "imbalance"] = "rls"
    # the book and the tape; "momentum" (trend or reversal by regime) and "volatility" / "spread" (no
    # direction: they only learn the recent drift) are available but overfit a short run
    features: tuple[str, ...] = ("imbalance", "imbalance_weighted", "micro_offset", "trade_flow")
    weighted_levels: Annotated[int, Meta(ge=1, le=100)] = 20
    trade_flow_halflife_s: PositiveFloat = 5.0  # the flow over about the label's horizon
    momentum_lookbacks_s: tuple[PositiveFloat, ...] = (1.0, 5.0, 30.0)
    horizon_s: PositiveFloat = 5.0  # label: log mid return over this horizon
    sample_interval_ms: NonNegFloat = 50.0  # at most one training sample per interval (0 = every book)
    max_pending_samples: PositiveInt = 16_384
    forgetting: Annotated[float, Meta(gt=0.9, le=1.0)] = 0.9999  # per sample; memory ~ 1 / (1 - f)
    ridge: PositiveFloat = 1_000.0  # in samples of z-scored features (50 s of overlapping 5 s labels)
    scaler_halflife_samples: PositiveFloat = 3_000.0
    prior_coefs_bps: tuple[float, ...] = ()  # warm start, bps per feature std (model order); () = zeros
    label_clip_sigma: PositiveFloat = 5.0  # training labels winsorised at this many label stds
    max_prediction_sigma: PositiveFloat = 1.0  # |prediction| capped at this many label stds
    ic_halflife_labels: PositiveFloat = 1_000.0
    ic_threshold: float = 0.02  # rolling out-of-sample IC below this: alpha falls back to zero
    ic_recover_threshold: float = 0.05  # ... and comes back above this
    min_labels: NonNegInt = 600  # labels before the self-check may switch alpha off
    # the self-check compares the IC's upper confidence bound, IC + z x its standard error (labels.RollingIC:
    # overlapping labels count as the independent horizons they span), with the thresholds: alpha goes off
    # only on evidence of no skill, not on the noise of ~10 independent labels; 0 = the bare IC.
    # Chosen by leave-one-capture-out (bench/signal_loco.py)
    ic_confidence_z: NonNegFloat = 1.0
    normalise_by_volatility: bool = False  # target = return / (volatility x sqrt(horizon)), not bps
    vol_floor_bps_per_s: PositiveFloat = 0.2  # floor of that volatility (a quiet book)
    calibrate: bool = True  # shrink predictions by their out-of-sample slope (signal.Calibration)
    calibration_halflife_labels: PositiveFloat = 1_000.0
    # pseudo-labels pulling the ratio toward 1, in independent labels (signal.Calibration); chosen by
    # leave-one-capture-out (bench/signal_loco.py; 30 000 ties): the ratio moves only on hours of evidence
    # (3 000 5 s horizons), since on the captures here a faster shrinkage cost more R2 than it saved
    calibration_prior_labels: NonNegFloat = 3_000.0
    calibration_max_ratio: Annotated[float, Meta(ge=0, le=10)] = 1.0
    # the experts beside the RLS on `features`: RLS on them with each of these forgetting factors, an
    # RLS on `features` + `wide_features` (() = none), the imbalance line, momentum and zero
    expert_forgetting: tuple[Annotated[float, Meta(gt=0.9, le=1.0)], ...] = (0.999,)
    wide_features: tuple[str, ...] = ("momentum",)
    # the aggregation's loss range, in horizon sigmas (volatility x sqrt(horizon)); chosen by
    # leave-one-capture-out (bench/signal_loco.py), as is the fixed share (prior switch rate per label)
    aggregation_clip_sigma: PositiveFloat = 5.0
    share: Annotated[float, Meta(ge=0, lt=1)] = 1e-3
    weights_points: Annotated[int, Meta(ge=2, le=4096)] = 64  # the report's weights-over-time series

    def __post_init__(self) -> None:
        if self.ic_recover_threshold < self.ic_threshold:
            raise ValueError(
                f"'ic_recover_threshold' must be >= 'ic_threshold' ({self.ic_threshold}), was {self.ic_recover_threshold}"
            )
        if not self.features:
            raise ValueError("'features' must name at least one feature, was none")


class QuoterConfig(Section):
    cpu: Core = -1
    nice: Nice = 0
    size_lot: PositiveInt = 100
    min_half_spread_ticks: PositiveFloat = 0.5  # 0.5 joins the touch of a one-tick market
    vol_spread_mult: NonNegFloat = 0.1  # half-spread >= this x the 1 s mid-move std (ticks)
    skew_ticks_per_lot: NonNegFloat = 0.01
    alpha_weight: NonNegFloat = 1.0
    requote_tolerance_ticks: NonNegInt = 1
    max_order_age_s: PositiveFloat = 30.0
    # Avellaneda-Stoikov / GLFT (infinite horizon) pricing; risk_aversion 0 = the linear skew above
    risk_aversion: NonNegFloat = 0.0  # gamma, per (order size x tick)
    arrival_intensity_per_s: PositiveFloat = 1.0  # A: fills per second at the touch
    arrival_decay_per_tick: PositiveFloat = 0.5  # k: intensity falls as A * exp(-k * distance)
    maker_fee_bps: Bps | None = None  # added to the half-spread (negative: a rebate); unset: the venue's maker fee
    # this x the expected adverse selection of a fill on each side (an online estimate from the markouts of our own
    # fills) joins the fee in that side's half-spread, and a side whose expected edge is negative is not quoted
    # (edge_prior); 0 = the half-spread covers the fee alone, no side stop. 0 was chosen by leave-one-capture-out
    # at the default fees (bench/quoter_loco.py): no fold's choice priced adverse selection in but the one without
    # NEXOUSDT, where every setting that did lost to fee-only quoting (the learned estimate of sweep fills widens
    # the quote past the sweeps that mean-revert)
    adverse_selection_weight: Annotated[float, Meta(ge=0, le=10)] = 0.0
    adverse_selection_horizon_s: Annotated[float, Meta(gt=0, le=60)] = 5.0  # the markout horizon priced in
    adverse_selection_halflife_fills: PositiveFloat = 50.0  # memory of the online estimate, in fills
    adverse_selection_prior_fills: NonNegFloat = 10.0  # pseudo-fills at the prior before ours speak
    # what a fill earns before fees (the side stop, mm/stages/quoter.py _edge_ok): "zero_profit" our fills' markouts
    # from pseudo-fills earning 0 bp at any price (Glosten 1994: a competitive book's every level breaks even),
    # "quote_distance" the same from pseudo-fills earning the quote's distance from the mid, "adverse_selection" the
    # quote's distance less the expected adverse selection, which the half-spread covers: no side is stopped, each
    # is quoted wider by its own adverse selection instead
    edge_prior: Literal["zero_profit", "quote_distance", "adverse_selection"] = "zero_profit"
    levels: Annotated[int, Meta(ge=1, le=10)] = 1
    level_spacing_ticks: Annotated[float, Meta(ge=1)] = 1.0
    size_ladder_ratio: Annotated[float, Meta(gt=0, le=10)] = 1.0  # level i size = size_lot * ratio^i


class RiskConfig(Section, kw_only=True):
    """Pre-trade limits. No defaults: a pipeline must state its limits."""

    cpu: Core = -1
    nice: Nice = 0
    max_order_lot: PositiveInt
    max_position_lot: PositiveInt
    max_notional_quote: PositiveFloat
    price_band_bps: Annotated[float, Meta(gt=0, le=10_000)]
    max_orders_per_s: PositiveFloat
    max_book_age_ms: PositiveFloat
    max_signal_age_ms: PositiveFloat
    # stop-losses (mm/risk_rules.apply_stop_event); 0 = that trigger is off
    soft_stop_drawdown_quote: NonNegFloat = 0.0  # drawdown from the peak PnL that starts a soft stop
    soft_stop_vol_bps_per_s: NonNegFloat = 0.0  # volatility that starts a soft stop
    soft_stop_size_ratio: Annotated[float, Meta(gt=0, le=1)] = 0.5  # quote sizes x this while soft
    soft_stop_widen_ticks: NonNegFloat = 2.0  # half-spread + this while soft
    soft_stop_cooldown_s: NonNegFloat = 60.0  # soft stop lasts at least this long
    hard_stop_drawdown_quote: NonNegFloat = 0.0  # drawdown from the peak PnL that halts until resume
    # position limit as a share of equity (capital + PnL), beside the absolute one; 0 = off
    max_position_equity_pct: Annotated[float, Meta(ge=0, le=10_000)] = 0.0
    equity_quote: NonNegFloat = 0.0  # capital in quote currency (paper / sim; live: the venue's balances)
    flatten_on_hard_stop: bool = False


class GatewayConfig(Section):
    cpu: Core = -1
    nice: Nice = 0
    venue: Literal["sim", "binance", "binance-usdm", "hyperliquid"] = "sim"  # a real venue (live mode)
    rest_url: str = ""  # binance: "" = the real API (spot or fapi); http://127.0.0.1:P for `mm venue`
    # orders over the signed WebSocket API ("rest": REST only); REST is the fallback while it is down
    order_entry: Literal["ws", "rest"] = "ws"
    ws_api_url: str = ""  # "" = the real one (spot /ws-api/v3, USD-M /ws-fapi/v1); ws://127.0.0.1:P/ws-api/v3
    user_stream_url: str = ""  # USD-M listenKey stream: "" = the real /private/ws; ws://127.0.0.1:P/private/ws
    reconcile_s: PositiveFloat = 60.0  # REST reconcile with the venue this often (and on a stream gap/reconnect)
    countdown_ms: Annotated[int, Meta(ge=1000, le=3_600_000)] = 10_000  # USD-M dead-man's switch, renewed at 1/3
    listen_key_keepalive_s: PositiveFloat = 1800.0  # USD-M: PUT the listenKey this often (it lives 60 min)
    api_key_env: str = "MM_API_KEY"  # the keys come from these variables, or from key_file
    # hyperliquid: the wallet (or approved API wallet) key from this variable, or key_file's secret
    private_key_env: str = "MM_HYPERLIQUID_PRIVATE_KEY"
    account_address: str = ""  # hyperliquid: the master account an API wallet signs for; "" = the key's own
    api_secret_env: str = "MM_API_SECRET"
    key_file: str = ""  # an encrypted key file (`mm keys create`); passphrase from MM_KEYS_PASSPHRASE
    recv_window_ms: Annotated[int, Meta(ge=1, le=60_000)] = 5000
    poll_ms: PositiveFloat = 250.0  # binance: our open orders queried this often only while the user stream is down
    client_id_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,12}$")] = "mm"
    order_latency_ms: NonNegFloat = 1.0
    maker_fee_bps: Bps | None = None  # unset: the standard tier of [instrument] market (mm/fees.py)
    taker_fee_bps: Bps | None = None
    queue_cancel_ahead_ratio: Ratio = 0.5  # share of an unexplained level shrink taken from ahead of us


class FillConfig(Section):
    """The sim venue's fill model (mm/fill_model.py): which queue-position model (mm/queue_models.py)
    and which order-entry / cancel latency (mm/latency_model.py; `mm report latency` fits it)."""

    queue_model: Literal["ratio", "risk_averse", "power_prob", "power_prob2", "power_prob3", "log_prob",
                         "log_prob2"] = "ratio"  # ratio: [gateway] queue_cancel_ahead_ratio of each shrink
    queue_power: Annotated[float, Meta(gt=0, le=100)] = 2.0  # n of the power_prob models
    latency_model: Literal["fixed", "empirical"] = "fixed"  # fixed: [gateway] order_latency_ms
    entry_latency_ms: list[NonNegFloat] = []  # empirical: one-way quantiles, 0 % to 100 % evenly spaced
    cancel_latency_ms: list[NonNegFloat] = []
    latency_seed: NonNegInt = 1  # the draws' generator: same seed, same replay

    def __post_init__(self) -> None:
        if self.latency_model == "empirical":
            for name in ("entry_latency_ms", "cancel_latency_ms"):
                table = getattr(self, name)
                if len(table) < 2 or any(b < a for a, b in zip(table, table[1:])):
                    raise ValueError(f"latency_model 'empirical' needs '{name}': at least 2 non-decreasing "
                                     f"quantiles (0 % to 100 %), was {table}")


class ReplayConfig(Section):
    """`mm replay`: capture files in order, pacing, and the lockstep that makes it deterministic."""

    files: list[str] = []
    speed: NonNegFloat = 0.0  # 0 = as fast as possible; 1 = real time; 10 = ten times faster
    lockstep: bool = True  # every stage finishes an event before the next: same input, same result


class MetricsConfig(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 9309  # 0 = off


class LogConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one JSON object a line (files under supervisord)


class Config(Section, kw_only=True):
    """The whole pipeline; cross-section rules in __post_init__."""

    risk: RiskConfig
    pipeline: PipelineConfig = PipelineConfig()
    instrument: InstrumentConfig = InstrumentConfig()
    ipc: IpcConfig = IpcConfig()
    sim: SimConfig = SimConfig()
    feed: FeedConfig = FeedConfig()
    book: BookConfig = BookConfig()
    signal: SignalConfig = SignalConfig()
    quoter: QuoterConfig = QuoterConfig()
    gateway: GatewayConfig = GatewayConfig()
    fill: FillConfig = FillConfig()
    replay: ReplayConfig = ReplayConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()

    def __post_init__(self) -> None:
        if self.pipeline.mode in ("paper", "live") and not (self.feed.ws_url and self.feed.rest_url):
            raise ValueError(f"mode {self.pipeline.mode!r} needs [feed] ws_url and rest_url (the venue's streams)")
        if self.pipeline.mode == "live" and self.gateway.venue == "sim":
            raise ValueError("mode 'live' sends real orders: [gateway] venue must name a real venue, not 'sim' "
                             "(use mode 'paper' for live data with simulated fills)")
        gw = self.gateway
        if gw.venue in ("binance", "binance-usdm") and gw.rest_url and not gw.ws_api_url:
            raise ValueError(f"[gateway] rest_url is {gw.rest_url!r} but ws_api_url is unset (it would mean the real "
                             "Binance WebSocket API): set ws_api_url too, e.g. ws://127.0.0.1:P/ws-api/v3")
        if gw.venue == "binance-usdm" and gw.rest_url and not gw.user_stream_url:
            raise ValueError(f"[gateway] rest_url is {gw.rest_url!r} but user_stream_url is unset (it would mean the "
                             "real USD-M user stream): set it too, e.g. ws://127.0.0.1:P/private/ws")
        if gw.venue == "hyperliquid" and gw.rest_url and not gw.user_stream_url:
            raise ValueError(f"[gateway] rest_url is {gw.rest_url!r} but user_stream_url is unset (it would mean the "
                             "real Hyperliquid /ws): set it too, e.g. ws://127.0.0.1:P/ws")


PROCESS_NAMES: tuple[str, ...] = ("feed", "book", "signal", "quoter", "risk", "gateway")


def md_readers(config: Config) -> tuple[str, ...]:
    """Who reads the feed's market data: the book, and the gateway while it simulates the venue
    (its fill model queues our orders behind the stream's depth and trades). A real venue matches
    our orders itself, so a live gateway is not woken by every market event."""
    return ("book", "gateway") if config.gateway.venue == "sim" else ("book",)


def load_config(path: Path | str | None = None) -> Config:
    """Decode and validate `path` (the packaged default when None); raise ConfigError naming it."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    return decode_config(raw, str(path))


def decode_config(raw: bytes, origin: str) -> Config:
    try:
        return msgspec.toml.decode(raw, type=Config)
    except msgspec.DecodeError as e:  # syntax and validation errors alike, with the key's path
        raise ConfigError(f"{origin}: {e}") from None


def run_dir(config: Config) -> Path:
    """Where ipc socket files and pid files live: owner-only, one per pipeline name."""
    if config.pipeline.run_dir:
        return Path(config.pipeline.run_dir)
    user = os.environ.get("USER") or getpass.getuser()
    return Path("/tmp") / f"mm-{user}" / config.pipeline.name


def journal_path(config: Config, process: str) -> Path:
    directory = Path(config.pipeline.journal_dir) if config.pipeline.journal_dir else run_dir(config)
    return directory / f"{process}.journal"


def core_of(config: Config, process: str) -> int:
    return getattr(config, process).cpu


RUNTIME_PARAMS: dict[str, frozenset[str]] = {
    "quoter": frozenset(
        {"size_lot", "min_half_spread_ticks", "vol_spread_mult", "skew_ticks_per_lot", "alpha_weight",
         "requote_tolerance_ticks", "max_order_age_s", "risk_aversion", "arrival_intensity_per_s",
         "arrival_decay_per_tick", "maker_fee_bps", "levels", "level_spacing_ticks", "size_ladder_ratio"}
    ),
    "signal": frozenset({"imbalance_coef_bps", "ic_threshold", "ic_recover_threshold", "min_labels"}),
    "risk": frozenset(
        {"max_order_lot", "max_position_lot", "max_notional_quote", "price_band_bps", "max_orders_per_s",
         "max_book_age_ms", "max_signal_age_ms", "soft_stop_drawdown_quote", "soft_stop_vol_bps_per_s",
         "soft_stop_size_ratio", "soft_stop_widen_ticks", "soft_stop_cooldown_s", "hard_stop_drawdown_quote",
         "flatten_on_hard_stop", "max_position_equity_pct", "equity_quote"}
    ),
}


def with_param(config: Config, key: str, value: str) -> Config:
    """Return config with `section.field` set to `value`, validated like the file; raise ConfigError."""
    section_name, _, field = key.partition(".")
    if section_name not in RUNTIME_PARAMS or field not in RUNTIME_PARAMS[section_name]:
        settable = ", ".join(f"{s}.{f}" for s in sorted(RUNTIME_PARAMS) for f in sorted(RUNTIME_PARAMS[s]))
        raise ConfigError(f"set: '{key}' is not a runtime parameter (one of: {settable})")
    section = getattr(config, section_name)
    data = msgspec.to_builtins(section)
    try:
        data[field] = msgspec.json.decode(value.encode())
    except msgspec.DecodeError:
        raise ConfigError(f"set {key}: value {value!r} is not a number or literal") from None
    try:
        new_section = msgspec.convert(data, type=type(section))
    except msgspec.ValidationError as e:
        raise ConfigError(f"set {key}: {e}") from None
    return msgspec.structs.replace(config, **{section_name: new_section})


def dump_toml(config: Config) -> str:
    """The config as TOML text (every section is a flat table of scalars and lists), for child processes."""
    lines: list[str] = []
    for section, values in msgspec.to_builtins(config).items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:  # unset (None) is the absent key: the default
                lines.append(f"{key} = {_toml_scalar(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(item) for item in value) + "]"
    raise TypeError(f"config value {value!r} has no TOML form here")
