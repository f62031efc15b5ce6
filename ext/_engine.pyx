# The compiled feature engine: ticks in, bars on M1/M5/M15/H1, the 147 catalog features, the market score
# and the direction with its confidence out. Everything per tick runs in C with no Python object built;
# Python is touched only at the call boundary.

cimport cython
from libc.math cimport NAN, INFINITY, fabs, sqrt, log, exp, sin, cos, floor, round, pow

import numpy as np

include "catalog.pxi"
include "calendar.pxi"
include "indicators.pxi"
include "timeframe.pxi"
include "micro.pxi"
include "session.pxi"
include "mtf.pxi"
include "scoring.pxi"

TIMEFRAME_SECONDS = (60, 300, 900, 3600)
TIMEFRAME_NAMES = ("M1", "M5", "M15", "H1")
DIRECTION_NAMES = {1: "BUY", -1: "SELL", 0: "HOLD"}
CONSENSUS_NAMES = ("UNANIMOUS", "STRONG", "WEAK", "SPLIT")

cdef enum:
    TICK_REJECTED_TIME = -1
    TICK_REJECTED_PRICE = -2


cdef inline bint _valid_prices(double bid, double ask, double volume) noexcept nogil:
    # Written so that NaN fails every comparison and is refused.
    return 0.0 < bid <= ask < INFINITY and 0.0 <= volume < INFINITY


cdef class FeatureEngine:
    """Features, market score and direction for one symbol, updated tick by tick.

    ``on_tick`` returns a bit mask of the timeframes whose bar the tick closed (bit 0 = M1 ... bit 3 = H1).
    Timeframe features change only when their bar closes; tick features change every tick; the market
    score and direction are refreshed on every bar close.
    """

    cdef TfState tf[N_TIMEFRAMES]
    cdef long long closed_start[N_TIMEFRAMES]   # open time of each timeframe's last closed bar
    cdef double feat[N_FEATURES]
    cdef unsigned char warm[N_FEATURES]
    cdef double ind[N_INDICATORS]
    cdef int warm_bars[TF_BLOCK_LEN]
    cdef Micro micro
    cdef DstYear dst
    cdef long long last_ms
    cdef long long minute_key
    cdef Model model
    cdef Signal signal
    cdef readonly str model_name

    def __init__(self, model=None):
        """``model``: a model file path, a loaded ``mt5bridge.core.model.DirectionModel``, or None for the default."""
        from mt5bridge.core.catalog import TIMEFRAME_BLOCK
        from mt5bridge.core.model import load_model

        loaded = load_model(model)
        self._load_model(loaded.arrays())
        self.model_name = loaded.name
        for k, block_feature in enumerate(TIMEFRAME_BLOCK):
            self.warm_bars[k] = block_feature.bars
        self.reset()

    def _load_model(self, dict a):
        cdef int i, k, n
        cdef double[:, :] w = a["weights"]
        for i in range(N_FEATURES):
            self.model.center[i] = a["center"][i]
            self.model.inv_scale[i] = 1.0 / a["scale"][i]
        self.model.clip = a["clip"]
        for k in range(N_SUBMODELS):
            n = 0
            for i in range(N_FEATURES):
                if w[k, i] != 0.0:
                    self.model.weight_feature[k][n] = i
                    self.model.weight[k][n] = w[k, i]
                    n += 1
            self.model.n_weights[k] = n
            self.model.bias[k] = a["bias"][k]
            self.model.submodel_weight[k] = a["submodel_weight"][k]
        self.model.buy_above = a["buy_above"]
        self.model.sell_below = a["sell_below"]
        self.model.vote_margin = a["vote_margin"]
        if len(a["term_feature"]) > MAX_SCORE_TERMS:
            # The term arrays are fixed C arrays read without bounds checks: never write past them.
            raise ValueError(f"the model has {len(a['term_feature'])} market-score terms; the engine holds at most "
                             f"{MAX_SCORE_TERMS}")
        self.model.n_terms = len(a["term_feature"])
        for k in range(self.model.n_terms):
            self.model.term_feature[k] = a["term_feature"][k]
            self.model.term_group[k] = a["term_group"][k]
            self.model.term_abs[k] = a["term_abs"][k]
            self.model.term_offset[k] = a["term_offset"][k]
            self.model.term_lo[k] = a["term_lo"][k]
            self.model.term_hi[k] = a["term_hi"][k]
            self.model.term_weight[k] = a["term_weight"][k]
        for k in range(N_GROUPS):
            self.model.group_weight[k] = a["group_weight"][k]

    def reset(self):
        """Forget every tick and bar: back to a new engine with the same model."""
        cdef int i
        for i in range(N_TIMEFRAMES):
            tf_init(&self.tf[i], TIMEFRAME_SECONDS[i] * 1000)
            self.closed_start[i] = NO_BAR
        for i in range(N_FEATURES):
            self.feat[i] = NAN
            self.warm[i] = 0
        for i in range(N_INDICATORS):
            self.ind[i] = NAN
        micro_init(&self.micro)
        self.dst.year = -1
        self.last_ms = -(1LL << 62)
        self.minute_key = -(1LL << 62)
        self.signal.score = 0.0
        self.signal.p_up = 0.5
        self.signal.direction = DIR_HOLD
        self.signal.confidence = 0.5
        self.signal.consensus = CONSENSUS_SPLIT
        for i in range(N_GROUPS):
            self.signal.group_score[i] = 0.0
        for i in range(N_SUBMODELS):
            self.signal.submodel_p[i] = 0.5

    # ---- the per-tick path ----------------------------------------------------------------------------

    cdef inline void _close_bar(self, int i) noexcept nogil:
        cdef TfState* s = &self.tf[i]
        self.closed_start[i] = s.bar_start
        tf_feed_closed_bar(s)
        tf_write_indicators(s, &self.ind[i * N_INDICATORS_PER_TF])
        tf_write_features(s, &self.ind[i * N_INDICATORS_PER_TF], &self.feat[i * TF_BLOCK_LEN],
                          &self.warm[i * TF_BLOCK_LEN], self.warm_bars)

    cdef inline void _after_close(self) noexcept nogil:
        mtf_write_features(self.tf, self.feat, self.warm)
        signal_update(&self.model, self.feat, self.warm, &self.signal)

    cdef int _tick(self, long long t, double bid, double ask, double volume) noexcept nogil:
        cdef int i, closed = 0
        cdef long long start, minute
        cdef TfState* s
        if t < self.last_ms:
            return TICK_REJECTED_TIME
        if not _valid_prices(bid, ask, volume):
            return TICK_REJECTED_PRICE
        for i in range(N_TIMEFRAMES):
            s = &self.tf[i]
            start = period_start(t, s.period_ms)
            if start > s.bar_start:
                if s.bar_start != NO_BAR:
                    self._close_bar(i)
                    closed |= 1 << i
                tf_open_bar(s, start, bid, bid, bid, bid, volume)
            else:
                tf_merge(s, bid, bid, bid, volume)
        self.last_ms = t
        micro_update(&self.micro, t, bid, ask)
        micro_write_features(&self.micro, bid, ask, self.tf[0].atr14.value, atr_ready(&self.tf[0].atr14),
                             self.feat, self.warm)
        minute = floor_div(t, MS_PER_MINUTE)
        if minute != self.minute_key:
            self.minute_key = minute
            session_write_features(&self.dst, t, self.feat, self.warm)
        if closed:
            self._after_close()
        return closed

    def _tick_error(self, int code, long long t, double bid, double ask, double volume):
        if code == TICK_REJECTED_TIME:
            return ValueError(f"tick time {t} ms is earlier than the last one seen ({self.last_ms} ms)")
        return ValueError(f"tick refused: bid {bid!r}, ask {ask!r}, volume {volume!r} "
                          "(need 0 < bid <= ask, finite, and volume >= 0)")

    def on_tick(self, long long time_ms, double bid, double ask, double volume=1.0):
        """Feed one tick (UTC ms, bid, ask, volume); returns the mask of timeframes whose bar closed."""
        cdef int r = self._tick(time_ms, bid, ask, volume)
        if r < 0:
            raise self._tick_error(r, time_ms, bid, ask, volume)
        return r

    # ---- history -------------------------------------------------------------------------------------

    @cython.boundscheck(True)
    def warmup_bars(self, int tf, const long long[:] time_ms, const double[:] open, const double[:] high,
                    const double[:] low, const double[:] close, const double[:] volume):
        """Warm one timeframe from its history bars (open times in UTC ms, oldest first).

        The last bar stays open, as on the terminal's chart, so live ticks of the same period extend it.
        Each timeframe is warmed from its own bars; a bar older than the timeframe's open bar is refused.
        """
        if not 0 <= tf < N_TIMEFRAMES:
            raise ValueError(f"timeframe {tf} is not one of 0..{N_TIMEFRAMES - 1} ({', '.join(TIMEFRAME_NAMES)})")
        cdef Py_ssize_t n = time_ms.shape[0], j
        for name, arr in (("open", open), ("high", high), ("low", low), ("close", close), ("volume", volume)):
            if arr.shape[0] != n:
                raise ValueError(f"warm-up {name} has {arr.shape[0]} values for {n} bar times")
        cdef TfState* s = &self.tf[tf]
        cdef long long start
        cdef double o, h, l, c, v
        cdef bint any_closed = False
        for j in range(n):
            o, h, l, c, v = open[j], high[j], low[j], close[j], volume[j]
            if not (_valid_prices(l, h, v) and l <= o <= h and l <= c <= h):
                raise ValueError(f"warm-up {TIMEFRAME_NAMES[tf]} bar {j} at {time_ms[j]} ms is not a valid bar: "
                                 f"open {o!r}, high {h!r}, low {l!r}, close {c!r}, volume {v!r}")
            start = period_start(time_ms[j], s.period_ms)
            if start < s.bar_start:
                raise ValueError(f"warm-up {TIMEFRAME_NAMES[tf]} bar {j} at {time_ms[j]} ms is older than the bar "
                                 f"already open at {s.bar_start} ms: history must come oldest first")
            if start > s.bar_start:
                if s.bar_start != NO_BAR:
                    self._close_bar(tf)
                    any_closed = True
                tf_open_bar(s, start, o, h, l, c, v)
            else:
                tf_merge(s, h, l, c, v)
            if start > self.last_ms:
                self.last_ms = start
        if any_closed:
            self._after_close()

    # ---- whole series, for files and replay -----------------------------------------------------------

    cdef void _record(self, int tf, Py_ssize_t row, long long[:] times, double[:, :] feats, double[:] score,
                      signed char[:] direction, double[:] confidence, signed char[:] consensus,
                      double[:, :] inds) noexcept nogil:
        cdef int i
        times[row] = self.closed_start[tf]
        for i in range(N_FEATURES):
            feats[row, i] = self.feat[i]
        score[row] = self.signal.score
        direction[row] = <signed char>self.signal.direction
        confidence[row] = self.signal.confidence
        consensus[row] = <signed char>self.signal.consensus
        if inds is not None:
            for i in range(N_INDICATORS):
                inds[row, i] = self.ind[i]

    def _result_arrays(self, Py_ssize_t rows, bint with_indicators):
        return {
            "time": np.empty(rows, dtype=np.int64),
            "features": np.empty((rows, N_FEATURES), dtype=np.float64),
            "score": np.empty(rows, dtype=np.float64),
            "direction": np.empty(rows, dtype=np.int8),
            "confidence": np.empty(rows, dtype=np.float64),
            "consensus": np.empty(rows, dtype=np.int8),
            "indicators": np.empty((rows, N_INDICATORS), dtype=np.float64) if with_indicators else None,
        }

    @cython.boundscheck(True)
    def process_ticks(self, const long long[:] time_ms, const double[:] bid, const double[:] ask,
                      const double[:] volume, int record_tf=0, bint with_indicators=False):
        """Feed a series of ticks; one row per bar close of ``record_tf``, as of that close.

        Returns a dict of arrays: ``time`` (the closed bar's open time, UTC ms), ``features`` (rows x 147),
        ``score``, ``direction`` (1 BUY, -1 SELL, 0 HOLD), ``confidence``, ``consensus`` (index into
        CONSENSUS_NAMES) and ``indicators`` (rows x 80, or None).
        """
        if not 0 <= record_tf < N_TIMEFRAMES:
            raise ValueError(f"record_tf {record_tf} is not one of 0..{N_TIMEFRAMES - 1}")
        cdef Py_ssize_t n = time_ms.shape[0], j, rows = 0, cap
        if bid.shape[0] != n or ask.shape[0] != n or volume.shape[0] != n:
            raise ValueError(f"tick arrays differ in length: time {n}, bid {bid.shape[0]}, "
                             f"ask {ask.shape[0]}, volume {volume.shape[0]}")
        cdef long long period = TIMEFRAME_SECONDS[record_tf] * 1000
        # A bar closes at most once per period the ticks span, plus the bar already open.
        cap = min(n, (time_ms[n - 1] - time_ms[0]) // period + 2) if n > 0 else 0
        if cap < 0:
            cap = n
        out = self._result_arrays(cap, with_indicators)
        cdef long long[:] times = out["time"]
        cdef double[:, :] feats = out["features"]
        cdef double[:] score = out["score"]
        cdef signed char[:] direction = out["direction"]
        cdef double[:] confidence = out["confidence"]
        cdef signed char[:] consensus = out["consensus"]
        cdef double[:, :] inds = out["indicators"] if with_indicators else None
        cdef int r, bit = 1 << record_tf
        for j in range(n):
            r = self._tick(time_ms[j], bid[j], ask[j], volume[j])
            if r < 0:
                raise ValueError(f"tick {j}: {self._tick_error(r, time_ms[j], bid[j], ask[j], volume[j])}")
            if r & bit:
                self._record(record_tf, rows, times, feats, score, direction, confidence, consensus, inds)
                rows += 1
        return {k: (v[:rows] if v is not None else None) for k, v in out.items()}

    @cython.boundscheck(True)
    def close_bars(self, int record_tf=0, bint with_indicators=False):
        """Close every open bar now (the end of a bar file); returns the ``record_tf`` row as process_ticks does."""
        if not 0 <= record_tf < N_TIMEFRAMES:
            raise ValueError(f"record_tf {record_tf} is not one of 0..{N_TIMEFRAMES - 1}")
        cdef int i
        cdef bint recorded = self.tf[record_tf].bar_start != NO_BAR, any_closed = False
        for i in range(N_TIMEFRAMES):
            if self.tf[i].bar_start != NO_BAR:
                self._close_bar(i)
                self.tf[i].bar_start = NO_BAR
                any_closed = True
        if any_closed:
            self._after_close()
        out = self._result_arrays(1 if recorded else 0, with_indicators)
        if recorded:
            self._record(record_tf, 0, out["time"], out["features"], out["score"], out["direction"],
                         out["confidence"], out["consensus"], out["indicators"] if with_indicators else None)
        return out

    # ---- reading the state -----------------------------------------------------------------------------

    @property
    def features(self):
        """The 147 features in catalog order (a copy); NaN where not warm."""
        return np.array(<double[:N_FEATURES]> self.feat, dtype=np.float64)

    @property
    def warm(self):
        """Per feature, 1 once it is warm (defined), else 0."""
        return np.array(<unsigned char[:N_FEATURES]> self.warm, dtype=np.uint8)

    @property
    def is_warm(self):
        """True when every feature is warm: the decision engine trades no symbol before that."""
        cdef int i
        for i in range(N_FEATURES):
            if not self.warm[i]:
                return False
        return True

    @property
    def indicators(self):
        """The 80 raw indicators (20 per timeframe, catalog INDICATOR_NAMES order) of the last closed bars."""
        return np.array(<double[:N_INDICATORS]> self.ind, dtype=np.float64)

    @property
    def score(self):
        """Market score 0-100."""
        return self.signal.score

    @property
    def direction(self):
        """1 BUY, -1 SELL, 0 HOLD."""
        return self.signal.direction

    @property
    def confidence(self):
        """Probability of the direction's side, max(p_up, 1 - p_up)."""
        return self.signal.confidence

    @property
    def consensus(self):
        """Index into CONSENSUS_NAMES: 0 UNANIMOUS, 1 STRONG, 2 WEAK, 3 SPLIT."""
        return self.signal.consensus

    @property
    def p_up(self):
        """The ensemble's probability of an up-move."""
        return self.signal.p_up

    @property
    def group_scores(self):
        """Sub-score 0-100 of each feature group, in catalog GROUPS order."""
        return np.array(<double[:N_GROUPS]> self.signal.group_score, dtype=np.float64)

    @property
    def submodel_probabilities(self):
        """p_up of trend-following, momentum, mean-reversion and breakout."""
        return np.array(<double[:N_SUBMODELS]> self.signal.submodel_p, dtype=np.float64)

    @property
    def last_time_ms(self):
        return self.last_ms

    def closed_bars(self, int tf):
        """How many bars of timeframe ``tf`` have closed."""
        if not 0 <= tf < N_TIMEFRAMES:
            raise ValueError(f"timeframe {tf} is not one of 0..{N_TIMEFRAMES - 1}")
        return self.tf[tf].closed

    def open_bar(self, int tf):
        """(open time ms, open, high, low, close, volume) of the bar being built, or None."""
        if not 0 <= tf < N_TIMEFRAMES:
            raise ValueError(f"timeframe {tf} is not one of 0..{N_TIMEFRAMES - 1}")
        cdef TfState* s = &self.tf[tf]
        if s.bar_start == NO_BAR:
            return None
        return (s.bar_start, s.o, s.h, s.l, s.c, s.v)


# ---- the decision engine: everything an account decides, on top of the features ------------------------

include "reasons.pxi"
include "account.pxi"
include "book.pxi"
include "sizing.pxi"
include "manage.pxi"
include "decision.pxi"   # the DecisionEngine class; the three parts after it are its functions
include "entry.pxi"
include "adds.pxi"
include "exits.pxi"
include "replay.pxi"
