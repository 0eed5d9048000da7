"""The signal's step: trades since the last book change, then the book, into the model
(mm/signal.py); the prediction it returns is what the shell writes into the prediction slot."""

from __future__ import annotations

from typing import Any

import numpy as np

from mm.config import Config
from mm.signal import Prediction, SignalModel


class SignalStep:
    def __init__(self, config: Config, *, keep_scored: bool) -> None:
        # a replay is finite: keep every scored label for the report's second-half figures
        self.model = SignalModel(config.signal, keep_scored=keep_scored)
        self.predictions = self.trades = self.unhealthy = 0

    def on_trades(self, trades: np.ndarray) -> None:
        """Trade records (fields ts_event_ns, px_tick, qty_lot, taker_side), in order."""
        on_trade = self.model.on_trade
        for rec in trades:
            on_trade(int(rec["ts_event_ns"]), int(rec["px_tick"]), int(rec["qty_lot"]), int(rec["taker_side"]))
        self.trades += len(trades)

    def on_book(self, ts_ns: int, bid_px: np.ndarray, bid_qty: np.ndarray, ask_px: np.ndarray, ask_qty: np.ndarray,
                n_bids: int, n_asks: int) -> Prediction:
        pred = self.model.on_book(ts_ns, bid_px, bid_qty, ask_px, ask_qty, n_bids, n_asks)
        self.predictions += 1
        if not pred.healthy:
            self.unhealthy += 1
        return pred

    def stats(self) -> dict[str, Any]:
        return {"predictions": self.predictions, "trades": self.trades, "unhealthy": self.unhealthy,
                "volatility_bps_per_s": self.model.volatility_bps_per_s, "model": self.model.report()}
