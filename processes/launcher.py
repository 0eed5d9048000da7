"""`mm run`: start the six actors as child processes, print a status line each second, stop them
with SIGTERM after the duration (or on Ctrl-C / SIGTERM), and write the run report.

Children are forked with multiprocessing so their logs merge into this terminal through
multiprocessing-logging. Leaves no socket file, pid file or shared-memory segment behind.
"""

from __future__ import annotations

import importlib
import tempfile
from decimal import Decimal
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import multiprocessing_logging
import numpy as np

from ipc.console_client import ControlClient, ControlUnreachableError
from ipc.endpoints import latency_path, pid_path, shm_prefix, stats_path
from ipc.shm import cleanup_segments
from mm.config import PROCESS_NAMES, Config, dump_toml, journal_path, run_dir
from mm.errors import MMError, OffGridError
from mm.position import contract_size
from mm.report import build_report, split_wall_clock
from processes.logsetup import setup_logging
from processes.metrics import remove_metrics_dir
from processes.progress import Progress

log = logging.getLogger("mm.run")


class AlreadyRunningError(MMError):
    """Another pipeline of the same name is alive in this run directory."""


def _child(process: str, config_path: str | None) -> None:
    launcher_pid = os.getppid()
    module = importlib.import_module(f"processes.{process}")
    argv = ["--config", config_path] if config_path else []
    code = module.actor_main(getattr(module, process.capitalize()), argv, inherit_logging=True, owned=True)
    if os.getppid() != launcher_pid:  # the launcher died: no one reads our log queue, and its feeder
        for handler in logging.getLogger().handlers:  # thread would hold our exit forever on a full pipe
            queue = getattr(handler, "queue", None)
            if queue is not None:
                queue.cancel_join_thread()
    sys.exit(code)


def live_pids(config: Config) -> dict[str, int]:
    """pid of each process whose pid file names a live process."""
    out: dict[str, int] = {}
    for name in PROCESS_NAMES:
        try:
            pid = int(pid_path(config, name).read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            out[name] = pid
    return out


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def clean_run_dir(config: Config, *, at_start: bool = False) -> None:
    """Remove socket files, pid files, stats and segments a previous run left behind. A simulated
    or replayed market is new each run, so its journal goes too; a paper or live one is kept."""
    directory = run_dir(config)
    fresh_market = config.pipeline.mode in ("sim", "replay")
    if directory.exists():
        for path in directory.iterdir():
            if path.suffix in (".sock", ".pid", ".tmp", ".npz") or path.name.endswith(".stats.json"):
                path.unlink(missing_ok=True)
    if at_start and fresh_market:
        for process in PROCESS_NAMES:
            journal_path(config, process).unlink(missing_ok=True)
    cleanup_segments(shm_prefix(config))
    remove_metrics_dir(config)


class Launcher:
    def __init__(self, config: Config, config_path: str | None, *, duration_s: float | None,
                 report_path: Path | None, status_every_s: float = 1.0, quiet: bool = False) -> None:
        self.config = config
        self.config_path = config_path
        self.duration_s = duration_s
        self.report_path = report_path
        self.status_every_s = status_every_s
        self.quiet = quiet
        self.children: dict[str, multiprocessing.Process] = {}
        self.progress: Progress | None = None  # a replay: lines of the capture read by the feed
        self.latency_samples: dict[str, np.ndarray] = {}
        self.report: dict[str, Any] | None = None
        self.restarts = 0
        self.interrupted = False  # stopped by SIGINT / SIGTERM before the end
        self._stop = threading.Event()

    def start(self) -> None:
        running = live_pids(self.config)
        if running:
            raise AlreadyRunningError(f"pipeline {self.config.pipeline.name!r} is already running in "
                                      f"{run_dir(self.config)}: {running}")
        clean_run_dir(self.config, at_start=True)
        run_dir(self.config).mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in PROCESS_NAMES:
            self._spawn(name)
        log.info("started %s", {n: p.pid for n, p in self.children.items()})

    def _spawn(self, name: str) -> None:
        proc = multiprocessing.get_context("fork").Process(target=_child, args=(name, self.config_path), name=name,
                                                           daemon=False)
        proc.start()
        self.children[name] = proc

    def request_stop(self, *_: Any) -> None:
        self.interrupted = True
        self._stop.set()

    def run(self) -> int:
        started = time.monotonic()
        self.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.request_stop)
        client = ControlClient(self.config, timeout_ms=300, retries=1)
        last_out: dict[str, int] = {}
        reported_dead: set[str] = set()
        failed: str | None = None
        try:
            while not self._stop.wait(self.status_every_s):
                elapsed = time.monotonic() - started
                for name, proc in list(self.children.items()):
                    if proc.exitcode is not None and name not in reported_dead:
                        reported_dead.add(name)
                        if proc.exitcode == 0:
                            log.info("%s finished", name)
                        else:
                            log.error("%s exited with code %s", name, proc.exitcode)
                            if self.config.pipeline.mode == "replay":
                                failed = name  # a restart would not replay the same stream: stop, fail
                            elif self.config.pipeline.restart_dead:
                                self.restarts += 1
                                self._spawn(name)
                                reported_dead.discard(name)
                                log.warning("%s restarted (pid %s)", name, self.children[name].pid)
                if failed is not None:
                    log.error("replay stopped: %s died, so the capture cannot be replayed to its end", failed)
                    break
                if all(p.exitcode is not None for p in self.children.values()):
                    log.info("every process has exited")
                    break
                if self.progress is not None:
                    self._update_progress(client)
                elif not self.quiet:
                    self._print_status(client, elapsed, last_out)
                if self.duration_s is not None and elapsed >= self.duration_s:
                    break
        finally:
            client.close()
        duration = time.monotonic() - started
        if self.progress is not None:
            self.progress.close()
        codes = self.stop_children()
        report = self.report = self.write_report(duration)
        self.cleanup()
        if not self.quiet:
            print(summary_line(report), flush=True)
        return 0 if all(code == 0 for code in codes.values()) else 1

    def _update_progress(self, client: ControlClient) -> None:
        assert self.progress is not None
        try:
            reply = client.request("status")
        except ControlUnreachableError:
            return
        lines = reply.result.get("feed", {}).get("lines") if reply.ok else None
        if lines is not None:
            self.progress.update(lines)

    def _print_status(self, client: ControlClient, elapsed: float, last_out: dict[str, int]) -> None:
        try:
            reply = client.request("status")
        except ControlUnreachableError:
            print(f"t={elapsed:5.1f}s control endpoint not answering", flush=True)
            return
        if not reply.ok:
            return
        status = reply.result
        rows = {row["name"]: row for row in status["processes"]}
        feed_out = rows["feed"]["out"]
        rate = (feed_out - last_out.get("feed", feed_out)) / self.status_every_s if last_out else 0.0
        last_out["feed"] = feed_out
        alive = sum(1 for row in rows.values() if row["alive"])
        pnl = status.get("position", {})
        print(f"t={elapsed:5.1f}s events/s={rate:7.1f} quotes={rows['quoter']['out']:6d} "
              f"position={pnl.get('position', 0.0):+.5f} pnl={pnl.get('total', 0.0):+.4f} "
              f"trading={status['trading']}{' paused' if status['paused'] else ''} alive={alive}/6", flush=True)

    def stop_children(self) -> dict[str, int | None]:
        for proc in self.children.values():
            if proc.exitcode is None and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.ipc.shutdown_deadline_s + 5.0
        for name, proc in self.children.items():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.error("%s did not stop in time: killed", name)
                proc.kill()
                proc.join()
        codes = {name: proc.exitcode for name, proc in self.children.items()}
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            log.error("processes that did not stop cleanly: %s", bad)
        return codes

    def write_report(self, duration_s: float) -> dict[str, Any]:
        stats: dict[str, dict[str, Any]] = {}
        for name in PROCESS_NAMES:
            try:
                stats[name] = json.loads(stats_path(self.config, name).read_text())
            except (OSError, ValueError):
                log.warning("%s left no stats (it did not stop cleanly)", name)
        try:
            with np.load(latency_path(self.config)) as samples:
                self.latency_samples = {key: samples[key] for key in samples.files}
        except OSError:
            self.latency_samples = {}
        report = write_outputs(self.config, stats, duration_s, self.report_path, self.latency_samples)
        return report

    def cleanup(self) -> None:
        clean_run_dir(self.config)
        if self.config.pipeline.mode in ("sim", "replay"):
            for process in PROCESS_NAMES:
                journal_path(self.config, process).unlink(missing_ok=True)
        directory = run_dir(self.config)
        try:
            directory.rmdir()
        except OSError:
            pass


def write_outputs(config: Config, stats: dict[str, dict[str, Any]], duration_s: float, report_path: Path | None,
                  latency_samples: dict[str, np.ndarray], *, plots: bool = True,
                  decode_s: float = 0.0) -> dict[str, Any]:
    """The run report from the stages' stats, and beside it (a replay) this machine's figures, the
    plots. Both replay engines and `mm run` write through here."""
    mode = config.pipeline.mode
    report = build_report(stats, wall_s=duration_s, mode=mode,
                          pipeline="replay" if mode == "replay" else config.pipeline.name,
                          symbol=config.instrument.symbol, tick_size=float(config.instrument.tick_size),
                          lot_size=float(config.instrument.lot_size),
                          contract_size=contract_size(config.instrument.market, config.instrument.symbol))
    if mode == "replay":  # deterministic report; this machine's figures beside it
        wall = split_wall_clock(report, stats.get("gateway", {}).get("latency_ns", {}))
        feed = stats.get("feed", {})
        frames = feed.get("capture", {}).get("lines", 0)
        total_s = duration_s + decode_s  # the whole replay: decoding (or the cache) and the engine
        wall["throughput"] = {"frames": frames, "events": feed.get("events", 0), "decode_s": round(decode_s, 3),
                              "engine_s": round(duration_s, 3),
                              "frames_per_s": round(frames / total_s, 1) if total_s > 0 else 0.0,
                              "events_per_s": round(feed.get("events", 0) / total_s, 1) if total_s > 0 else 0.0}
        if report_path is not None:
            wall_path = report_path.with_suffix(".wall.json")
            wall_path.write_text(json.dumps(wall, indent=2, sort_keys=True) + "\n")
        report["_wall"] = wall  # for the summary line only; not written into the report
    if report_path is not None:
        written = {k: v for k, v in report.items() if k != "_wall"}
        report_path.write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
        log.info("report written to %s", report_path)
    if report_path is not None and plots:
        from processes.plots import write_plots

        if "gateway" in stats and "tick_to_order" in latency_samples:
            stats["gateway"]["tick_to_order_ns"] = latency_samples["tick_to_order"]
        written_plots = write_plots(report, stats, report_path.with_suffix(""))
        log.info("plots: %s", ", ".join(str(p) for p in written_plots))
    return report


def summary_line(report: dict[str, Any]) -> str:
    t2o = report.get("_wall", report)["latency_ns"]["tick_to_order"]
    orders = report["orders"]
    return (f"done: events={report['events']} orders sent={orders['sent']} filled={orders['filled']} "
            f"fills={report['fills']} position={report['position']:+.5f} pnl={report['pnl']['total']:+.4f} "
            f"tick_to_order p50={t2o['p50'] / 1e3:.0f}us p99={t2o['p99'] / 1e3:.0f}us (n={t2o['count']})")


def replay_config(base: Config, files: list[Path], *, symbol: str | None, speed: float) -> Config:
    """The config of a replay: mode replay, the instrument as the capture shows it (the real tick
    and lot sizes inferred from its first depth snapshot), the files, the pacing; metrics off."""
    from processes.replay_source import capture_instrument

    found = capture_instrument(files, symbol)
    grid = found.grid
    replace = msgspec.structs.replace
    name = f"replay{os.getpid()}"
    # sizes in config count lots of the config's instrument: keep them the same in base units
    scale = Decimal(base.instrument.lot_size) / grid.lot_size
    quoter, risk = base.quoter, base.risk
    return replace(
        base,
        quoter=replace(quoter, size_lot=max(1, int(quoter.size_lot * scale)),
                       skew_ticks_per_lot=float(Decimal(str(quoter.skew_ticks_per_lot)) / scale)),
        risk=replace(risk, max_order_lot=max(1, int(risk.max_order_lot * scale)),
                     max_position_lot=max(1, int(risk.max_position_lot * scale))),
        pipeline=replace(base.pipeline, mode="replay", name=name,
                         run_dir=str(Path(base.pipeline.run_dir or run_dir(base).parent) / name)),
        instrument=replace(base.instrument, symbol=grid.symbol, tick_size=_plain(grid.tick_size),
                           lot_size=_plain(grid.lot_size),
                           market=capture_market(files, found.instrument)),
        replay=replace(base.replay, files=[str(p.resolve()) for p in files], speed=speed),
        metrics=replace(base.metrics, port=0),
    )


def capture_market(files: list[Path], instrument: str = "") -> str:
    """The market the first capture was recorded on (mm.fees.market_of_capture of its first 256 KiB)."""
    from mm.capture import read_chunks
    from mm.fees import market_of_capture

    head = b""
    for chunk in read_chunks(files[0]):
        head += chunk
        if len(head) >= 1 << 18:
            break
    return market_of_capture(head, instrument)


def count_lines(files: list[Path]) -> int:
    """Lines in the capture files (gzip or plain): the progress bar's total."""
    from mm.capture import read_chunks

    return sum(chunk.count(b"\n") for path in files for chunk in read_chunks(path))


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def run_replay(base: Config, files: list[Path], *, symbol: str | None, speed: float, report_path: Path | None,
               quiet: bool = False, engine: str = "inproc") -> int:
    """`mm replay`: the six processes, or their steps in this process (`engine="inproc"`); the same
    report either way. A finished replay adds the fixed-spread baseline run through the in-process
    engine on the same input (`comparison`)."""
    setup_logging(base.log.level, "mm")
    config = replay_config(base, files, symbol=symbol, speed=speed)
    log.info("replay of %s: tick %s, lot %s (%s engine)", config.instrument.symbol, config.instrument.tick_size,
             config.instrument.lot_size, engine)
    decoded = DecodedInput(config, files)
    if engine == "inproc":  # the pipeline and the baseline read one market pass (the six processes run their own)
        decoded.record_market(config, quiet=quiet)
    with tempfile.TemporaryDirectory(prefix="mm-baseline-") as baseline_dir:
        baseline = BaselineRun(config, decoded, Path(baseline_dir)) if report_path is not None else None
        code, interrupted = _run_engine(engine, config, files, decoded, report_path, quiet)
        if interrupted:
            print("mm replay: interrupted: the report covers part of the capture (no strategy comparison)",
                  file=sys.stderr, flush=True)
        if baseline is not None:
            result = baseline.join()
            if not interrupted and result is not None and report_path is not None and report_path.exists():
                add_comparison(report_path, config, result)
    return code


def _run_engine(engine: str, config: Config, files: list[Path], decoded: DecodedInput, report_path: Path | None,
                quiet: bool) -> tuple[int, bool]:
    if engine == "inproc":
        return run_inproc(config, decoded, report_path, quiet=quiet)
    else:
        multiprocessing_logging.install_mp_handler()
        with tempfile.TemporaryDirectory(prefix="mm-replay-") as tmp:
            config_path = Path(tmp) / "replay.toml"
            config_path.write_text(dump_toml(config))
            launcher = Launcher(config, str(config_path), duration_s=None, report_path=report_path, quiet=quiet,
                                status_every_s=0.5)
            if not quiet:
                launcher.progress = Progress(count_lines(files), label=f"replay {config.instrument.symbol}",
                                             unit="lines")
            code = launcher.run()
        return code, launcher.interrupted


class BaselineRun:
    """The fixed-spread baseline (mid +- 1 tick, no skew, no signal): another quoter step run by the
    in-process engine on the same decoded input, in a forked child while the pipeline runs (a
    second core), with the same risk limits, venue, fill model and order latency."""

    HALF_SPREAD_TICKS = 1.0

    def __init__(self, config: Config, decoded: DecodedInput, directory: Path) -> None:
        self.path = directory / "fixed_spread.json"
        self.process = multiprocessing.get_context("fork").Process(target=self._run, args=(config, decoded),
                                                                    name="baseline", daemon=True)
        self.process.start()

    def _run(self, config: Config, decoded: DecodedInput) -> None:
        from mm.stages.quoter import FixedSpreadStep

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
        quoter = FixedSpreadStep(config, f"{config.gateway.client_id_prefix}fx",
                                 half_spread_ticks=self.HALF_SPREAD_TICKS)
        code, _ = run_inproc(config, decoded, self.path, quiet=True, quoter=quoter, plots=False)
        sys.exit(code)

    def join(self) -> dict[str, Any] | None:
        """The baseline's report; None (logged) if it failed."""
        self.process.join()
        if self.process.exitcode != 0 or not self.path.exists():
            log.error("the fixed-spread baseline failed (exit code %s): no comparison", self.process.exitcode)
            return None
        return json.loads(self.path.read_text())


def no_market_events(files: list[Path], symbol: str, stats: Any) -> str:
    """Why a capture gave no diff, trade or ticker of `symbol`: its malformed and skipped lines (a
    replay of it would write a report of an empty market with exit 0)."""
    why = [f"{stats.lines} lines"]
    if stats.malformed_count:
        why.append(f"{stats.malformed_count} malformed, the first {stats.malformed[0]}")
    if stats.skipped:
        why.append("skipped " + ", ".join(f"{kind} {n}" for kind, n in stats.skipped.most_common(3)))
    return (f"{', '.join(map(str, files))}: no depth diff, trade or book ticker of {symbol} could be read "
            f"({'; '.join(why)}): nothing to replay")


class DecodedInput:
    """A replay's input decoded once: the source's counters and its messages, for every engine run."""

    def __init__(self, config: Config, files: list[Path]) -> None:
        from processes.replay_source import replay_source

        started = time.monotonic()
        self.files = files
        self.source = replay_source(config)  # config.replay.files: these files, resolved
        self.messages = list(self.source.messages())
        if not any(type(m).__name__ != "BookSnapshot" for m in self.messages):
            raise OffGridError(no_market_events(files, config.instrument.symbol, self.source.capture_stats))
        stats = self.source.capture_stats
        if stats.malformed_count:  # never skipped unsaid: name the first ones (file:line: reason)
            log.warning("replay: %d malformed line(s) of the capture skipped; the first: %s", stats.malformed_count,
                        "; ".join(stats.malformed[:5]))
        self.decode_s = time.monotonic() - started  # the capture's frames, or the cache, to messages
        self.tape: Any = None  # the book's and the signal's side, run once for every strategy (record_market)
        self.tape_s = 0.0

    def record_market(self, config: Config, *, quiet: bool) -> None:
        """Run the book and the signal over the messages once (processes/inproc.py MarketTape): the
        in-process runs of the pipeline and of the baseline then share it."""
        from processes.inproc import MarketTape

        progress = None if quiet else Progress(len(self.messages), label=f"book+signal {config.instrument.symbol}",
                                               unit="frames")
        started = time.monotonic()
        try:
            self.tape = MarketTape(config, self.messages, progress.update if progress is not None else None)
        finally:
            if progress is not None:
                progress.close()
        self.tape_s = time.monotonic() - started


def run_inproc(config: Config, decoded: DecodedInput, report_path: Path | None, *, quiet: bool,
               quoter: Any = None, plots: bool = True) -> tuple[int, bool]:
    """The replay's six steps in this process (processes/inproc.py). (exit code, interrupted)."""
    from processes.inproc import InprocReplay

    engine = InprocReplay(config, quoter)
    progress = None if quiet else Progress(len(decoded.messages), label=f"replay {config.instrument.symbol}",
                                           unit="frames")
    started = time.monotonic()
    try:
        engine.run(decoded.messages, progress.update if progress is not None else None, tape=decoded.tape)
    except KeyboardInterrupt:
        return 1, True
    finally:
        if progress is not None:
            progress.close()
    duration = time.monotonic() - started + decoded.tape_s  # the market side's pass is the engine's work too
    stats = engine.stats(decoded.source)
    samples = {"tick_to_order": engine.tick_to_order.values()}
    report = write_outputs(config, stats, duration, report_path, samples, plots=plots, decode_s=decoded.decode_s)
    if not quiet and quoter is None:
        print(summary_line(report), flush=True)
    return 0, False


def add_comparison(report_path: Path, config: Config, baseline: dict[str, Any]) -> None:
    """The pipeline's result beside the fixed-spread baseline's (BaselineRun); `strategy` is the
    pipeline's own run: one engine, two strategies."""
    from mm.fees import config_fees

    report = json.loads(report_path.read_text())
    pipeline = comparison_row(report)
    lot = float(config.instrument.lot_size)
    fees = config_fees(config)
    report["comparison"] = {
        "pipeline": pipeline, "strategy": dict(pipeline), "fixed_spread": comparison_row(baseline),
        "settings": {"symbol": config.instrument.symbol, "tick_size": float(config.instrument.tick_size),
                     "latency_ms": config.gateway.order_latency_ms, "order_qty": config.quoter.size_lot * lot,
                     "max_position": config.risk.max_position_lot * lot,
                     "baseline_half_spread_ticks": BaselineRun.HALF_SPREAD_TICKS,
                     "maker_fee_bps": fees.maker_bps,
                     "taker_fee_bps": fees.taker_bps, "fee_source": fees.source,
                     "market": config.instrument.market, "quoter_maker_fee_bps": fees.quoter_maker_bps,
                     "book_events": report["book"]["updates"],
                     "trades": report["signal"].get("trades", 0), "engine": "inproc"},
    }
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(format_comparison(report["comparison"]), flush=True)


def comparison_row(report: dict[str, Any]) -> dict[str, Any]:
    """One strategy's line of the comparison, from its run report."""
    notional = report.get("traded_notional", 0.0)
    pnl = report["pnl"]
    gross = pnl["realized"] + pnl["unrealized"]
    markouts = report.get("markouts", {})
    return {"pnl_quote": pnl["total"], "fills": report["fills"],
            "pnl_per_notional_bps": pnl["total"] / notional * 1e4 if notional else 0.0,
            "gross_pnl_quote": gross, "net_pnl_quote": pnl["total"],
            "gross_pnl_per_notional_bps": gross / notional * 1e4 if notional else 0.0,
            "fees_per_notional_bps": pnl["fees"] / notional * 1e4 if notional else 0.0,
            "markout_bps": markouts.get("adverse_selection_bps", {}),
            "markout_pnl_bps": markouts.get("markout_bps", {}),
            "spread_capture_bps": markouts.get("spread_capture_bps"),
            "quoted_s": report.get("quoting", {}).get("quoted_s", {}),
            "max_abs_inventory": report.get("max_abs_position", 0.0), "traded_notional_quote": notional,
            "realized_quote": pnl["realized"], "unrealized_quote": pnl["unrealized"], "fees_quote": pnl["fees"],
            "final_inventory": report["position"], "orders_sent": report["orders"]["sent"]}


def format_comparison(comparison: dict[str, Any]) -> str:
    lines = [f"{'':<14} {'PnL':>12} {'PnL/notional bp':>16} {'max |inv|':>12} {'fills':>7} {'gross':>10} "
             f"{'fees':>10} {'capture bp':>10} {'adverse 1s/5s bp':>17}"]
    for name in ("pipeline", "strategy", "fixed_spread"):
        row = comparison[name]
        adverse = row.get("markout_bps", {})
        lines.append(f"{name:<14} {row['pnl_quote']:>12.4f} {row['pnl_per_notional_bps']:>16.3f} "
                     f"{row['max_abs_inventory']:>12.6g} {row['fills']:>7} {row.get('gross_pnl_quote', 0.0):>10.4f} "
                     f"{row['fees_quote']:>10.4f} {_bp(row.get('spread_capture_bps')):>10} "
                     f"{_bp(adverse.get('1s')) + '/' + _bp(adverse.get('5s')):>17}")
    return "\n".join(lines)


def _bp(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def run_pipeline(config: Config, config_path: str | None, *, duration_s: float | None, report_path: Path | None,
                 quiet: bool = False) -> int:
    setup_logging(config.log.level, "mm")
    multiprocessing_logging.install_mp_handler()
    launcher = Launcher(config, config_path, duration_s=duration_s, report_path=report_path, quiet=quiet)
    return launcher.run()
