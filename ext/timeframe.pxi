# One timeframe of one symbol: the bar being built from ticks, the indicators fed by closed bars, and the
# timeframe's block of features. Bars are closed by time: the first tick (or history bar) of a later period
# closes the open bar, so a weekend or holiday gap leaves no empty bars behind.

cdef enum:
    SWING_WINDOW = 50
    NO_BAR = -1


cdef struct TfState:
    long long period_ms
    long long bar_start        # open time of the bar being built, NO_BAR before the first tick
    double o
    double h
    double l
    double c
    double v
    long long closed           # bars closed so far
    double prev_close
    Ema ema20
    Ema ema50
    Ema ema200
    Atr atr14
    Atr atr50
    Rsi rsi14
    Macd macd
    Adx adx14
    Stoch stoch
    Ring highs                 # last 50 highs
    Ring lows                  # last 50 lows
    Ring closes                # last 11 closes: ROC(10)
    Ring bb                    # last 20 closes: Bollinger
    Ring tp                    # last 20 typical prices: CCI
    Ring vols                  # last 20 volumes
    Ring rets                  # last 20 log returns
    Ring signed_vol            # last 10 of sign(c - c[1]) * v
    Ring vol10                 # last 10 volumes
    Ring ema20_hist            # last 6 EMA(20) values
    Ring ema50_hist            # last 6 EMA(50) values
    double swing_high
    double swing_low
    long long swing_high_bar   # closed-bar number of the swing bar, -1 when none seen
    long long swing_low_bar
    # extremes of the newest 14, 20 and 50 bars, refreshed on each close
    double hh14
    double ll14
    double hh20
    double ll20
    double hh50
    double ll50


cdef inline void tf_init(TfState* s, long long period_ms) noexcept nogil:
    s.period_ms = period_ms
    s.bar_start = NO_BAR
    s.o = s.h = s.l = s.c = s.v = NAN
    s.closed = 0
    s.prev_close = NAN
    ema_init(&s.ema20, 20)
    ema_init(&s.ema50, 50)
    ema_init(&s.ema200, 200)
    atr_init(&s.atr14, 14)
    atr_init(&s.atr50, 50)
    rsi_init(&s.rsi14, 14)
    macd_init(&s.macd, 12, 26, 9)
    adx_init(&s.adx14, 14)
    stoch_init(&s.stoch, 3, 3)
    ring_init(&s.highs, SWING_WINDOW)
    ring_init(&s.lows, SWING_WINDOW)
    ring_init(&s.closes, 11)
    ring_init(&s.bb, 20)
    ring_init(&s.tp, 20)
    ring_init(&s.vols, 20)
    ring_init(&s.rets, 20)
    ring_init(&s.signed_vol, 10)
    ring_init(&s.vol10, 10)
    ring_init(&s.ema20_hist, 6)
    ring_init(&s.ema50_hist, 6)
    s.swing_high = s.swing_low = NAN
    s.swing_high_bar = -1
    s.swing_low_bar = -1
    s.hh14 = s.ll14 = s.hh20 = s.ll20 = s.hh50 = s.ll50 = NAN


cdef inline long long period_start(long long t_ms, long long period_ms) noexcept nogil:
    return floor_div(t_ms, period_ms) * period_ms


cdef inline void tf_open_bar(TfState* s, long long start, double o, double h, double l, double c,
                             double v) noexcept nogil:
    s.bar_start = start
    s.o = o
    s.h = h
    s.l = l
    s.c = c
    s.v = v


cdef inline void tf_merge(TfState* s, double h, double l, double c, double v) noexcept nogil:
    if h > s.h:
        s.h = h
    if l < s.l:
        s.l = l
    s.c = c
    s.v += v


cdef inline int _scan_back(const TfState* s, int idx, int steps, double* hh, double* ll) noexcept nogil:
    # Walk the high/low rings from slot idx toward older bars; returns the slot after the last one read.
    cdef int k
    for k in range(steps):
        if idx < 0:
            idx = SWING_WINDOW - 1
        if s.highs.buf[idx] > hh[0]:
            hh[0] = s.highs.buf[idx]
        if s.lows.buf[idx] < ll[0]:
            ll[0] = s.lows.buf[idx]
        idx -= 1
    return idx


cdef inline void _extremes(TfState* s) noexcept nogil:
    # One walk back over the newest 50 bars yields the 14-, 20- and 50-bar extremes.
    cdef int n = <int>(s.highs.count if s.highs.count < SWING_WINDOW else SWING_WINDOW)
    cdef double hh = -INFINITY, ll = INFINITY
    cdef int idx = s.highs.head - 1
    idx = _scan_back(s, idx, n if n < 14 else 14, &hh, &ll)
    if n >= 14:
        s.hh14 = hh
        s.ll14 = ll
        idx = _scan_back(s, idx, (n if n < 20 else 20) - 14, &hh, &ll)
    if n >= 20:
        s.hh20 = hh
        s.ll20 = ll
        idx = _scan_back(s, idx, n - 20, &hh, &ll)
    s.hh50 = hh
    s.ll50 = ll


cdef inline void _swings(TfState* s) noexcept nogil:
    # A swing high is confirmed two bars after it: its high tops the two highs either side.
    if s.highs.count < 5:
        return
    cdef double mid_h = ring_ago(&s.highs, 2), mid_l = ring_ago(&s.lows, 2)
    if (mid_h > ring_ago(&s.highs, 0) and mid_h > ring_ago(&s.highs, 1)
            and mid_h > ring_ago(&s.highs, 3) and mid_h > ring_ago(&s.highs, 4)):
        s.swing_high = mid_h
        s.swing_high_bar = s.closed - 3
    if (mid_l < ring_ago(&s.lows, 0) and mid_l < ring_ago(&s.lows, 1)
            and mid_l < ring_ago(&s.lows, 3) and mid_l < ring_ago(&s.lows, 4)):
        s.swing_low = mid_l
        s.swing_low_bar = s.closed - 3


cdef inline void tf_feed_closed_bar(TfState* s) noexcept nogil:
    """Feed the open bar, now complete, to every indicator of the timeframe."""
    cdef double h = s.h, l = s.l, c = s.c, v = s.v
    s.closed += 1
    ema_update(&s.ema20, c)
    ema_update(&s.ema50, c)
    ema_update(&s.ema200, c)
    atr_update(&s.atr14, h, l, c)
    atr_update(&s.atr50, h, l, c)
    rsi_update(&s.rsi14, c)
    macd_update(&s.macd, c)
    adx_update(&s.adx14, h, l, c)
    ring_push(&s.highs, h)
    ring_push(&s.lows, l)
    ring_push(&s.closes, c)
    ring_push(&s.bb, c)
    ring_push(&s.tp, (h + l + c) / 3.0)
    ring_push(&s.vols, v)
    if s.closed > 1:
        ring_push(&s.rets, log(c / s.prev_close))
        ring_push(&s.signed_vol, v if c > s.prev_close else (-v if c < s.prev_close else 0.0))
        ring_push(&s.vol10, v)
    if ema_ready(&s.ema20):
        ring_push(&s.ema20_hist, s.ema20.value)
    if ema_ready(&s.ema50):
        ring_push(&s.ema50_hist, s.ema50.value)
    _extremes(s)
    _swings(s)
    if s.closed >= 14:
        stoch_update(&s.stoch, c, s.hh14, s.ll14)
    s.prev_close = c


cdef inline double ratio(double num, double den, double when_zero) noexcept nogil:
    return num / den if den != 0.0 else when_zero


cdef inline double per_atr(double num, double atr) noexcept nogil:
    return num / atr if atr > 0.0 else 0.0


cdef inline double sign(double x) noexcept nogil:
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)


cdef inline void tf_write_indicators(const TfState* s, double* ind) noexcept nogil:
    """The raw indicators, NaN exactly where TA-Lib's batch output is NaN."""
    cdef double mid, var, sd
    ind[IND_EMA_20] = s.ema20.value
    ind[IND_EMA_50] = s.ema50.value
    ind[IND_EMA_200] = s.ema200.value
    ind[IND_RSI_14] = s.rsi14.value
    ind[IND_ATR_14] = s.atr14.value
    ind[IND_ATR_50] = s.atr50.value
    if macd_ready(&s.macd):
        ind[IND_MACD_12_26_9] = s.macd.line
        ind[IND_MACD_SIGNAL_12_26_9] = s.macd.signal.value
        ind[IND_MACD_HIST_12_26_9] = s.macd.hist
    else:
        ind[IND_MACD_12_26_9] = ind[IND_MACD_SIGNAL_12_26_9] = ind[IND_MACD_HIST_12_26_9] = NAN
    if s.bb.count >= s.bb.n:
        mid = ring_mean(&s.bb)
        var = ring_pop_var(&s.bb, mid)
        # As TA-Lib: a variance under its zero threshold is a flat window, and the bands close on the mean.
        sd = sqrt(var) if var >= TA_EPSILON else 0.0
        ind[IND_BB_UPPER_20_2] = mid + 2.0 * sd
        ind[IND_BB_MIDDLE_20_2] = mid
        ind[IND_BB_LOWER_20_2] = mid - 2.0 * sd
    else:
        ind[IND_BB_UPPER_20_2] = ind[IND_BB_MIDDLE_20_2] = ind[IND_BB_LOWER_20_2] = NAN
    ind[IND_ADX_14] = s.adx14.value if adx_ready(&s.adx14) else NAN
    ind[IND_PLUS_DI_14] = s.adx14.plus_di if adx_di_ready(&s.adx14) else NAN
    ind[IND_MINUS_DI_14] = s.adx14.minus_di if adx_di_ready(&s.adx14) else NAN
    ind[IND_STOCH_K_14_3_3] = s.stoch.k if s.stoch.slow_k.count >= s.stoch.slow_k.n else NAN
    ind[IND_STOCH_D_14_3_3] = s.stoch.d
    ind[IND_CCI_20] = cci_value(&s.tp) if s.tp.count >= s.tp.n else NAN
    if s.closed >= 14:
        ind[IND_WILLR_14] = (s.hh14 - s.c) / ((s.hh14 - s.ll14) / (-100.0)) if s.hh14 != s.ll14 else 0.0
    else:
        ind[IND_WILLR_14] = NAN
    if s.closes.count >= s.closes.n:
        ind[IND_ROC_10] = ((s.c / ring_ago(&s.closes, 10)) - 1.0) * 100.0 if ring_ago(&s.closes, 10) != 0.0 else 0.0
    else:
        ind[IND_ROC_10] = NAN


cdef inline void tf_write_features(const TfState* s, const double* ind, double* f, unsigned char* warm,
                                   const int* warm_bars) noexcept nogil:
    """The timeframe's block of features from its indicators; NaN (and warm 0) until the catalog's warm-up."""
    cdef double c = s.c, atr = s.atr14.value, swing, mean, sd, sv_sum = 0.0, v_sum = 0.0
    cdef int k
    f[TFO_EMA_20_DIST] = per_atr(c - s.ema20.value, atr)
    f[TFO_EMA_50_DIST] = per_atr(c - s.ema50.value, atr)
    f[TFO_EMA_200_DIST] = per_atr(c - s.ema200.value, atr)
    if s.ema20_hist.count >= 6:
        f[TFO_EMA_20_SLOPE] = per_atr(s.ema20.value - ring_ago(&s.ema20_hist, 5), 5.0 * atr)
    if s.ema50_hist.count >= 6:
        f[TFO_EMA_50_SLOPE] = per_atr(s.ema50.value - ring_ago(&s.ema50_hist, 5), 5.0 * atr)
    f[TFO_EMA_20_50_GAP] = per_atr(s.ema20.value - s.ema50.value, atr)
    f[TFO_ADX_14] = ind[IND_ADX_14]
    f[TFO_DI_DIFF_14] = ind[IND_PLUS_DI_14] - ind[IND_MINUS_DI_14]
    f[TFO_RSI_14] = ind[IND_RSI_14]
    f[TFO_MACD_ATR] = per_atr(ind[IND_MACD_12_26_9], atr)
    f[TFO_MACD_HIST_ATR] = per_atr(ind[IND_MACD_HIST_12_26_9], atr)
    f[TFO_STOCH_K_14_3_3] = ind[IND_STOCH_K_14_3_3]
    f[TFO_STOCH_D_14_3_3] = ind[IND_STOCH_D_14_3_3]
    f[TFO_CCI_20] = ind[IND_CCI_20]
    f[TFO_WILLR_14] = ind[IND_WILLR_14]
    f[TFO_ROC_10] = ind[IND_ROC_10]
    f[TFO_RET_1_ATR] = per_atr(c - ring_ago(&s.closes, 1), atr) if s.closes.count >= 2 else NAN
    f[TFO_ATR_14_PCT] = 100.0 * atr / c
    f[TFO_ATR_RATIO_14_50] = ratio(atr, s.atr50.value, 1.0)
    f[TFO_BB_PCTB_20_2] = ratio(c - ind[IND_BB_LOWER_20_2], ind[IND_BB_UPPER_20_2] - ind[IND_BB_LOWER_20_2], 0.5)
    f[TFO_BB_WIDTH_20_2] = ratio(ind[IND_BB_UPPER_20_2] - ind[IND_BB_LOWER_20_2], ind[IND_BB_MIDDLE_20_2], 0.0)
    f[TFO_RANGE_ATR] = per_atr(s.h - s.l, atr)
    if s.rets.count >= s.rets.n:
        f[TFO_REALIZED_VOL_20] = 100.0 * ring_pop_std(&s.rets, ring_mean(&s.rets))
    if s.vols.count >= s.vols.n:
        mean = ring_mean(&s.vols)
        sd = ring_pop_std(&s.vols, mean)
        f[TFO_VOLUME_Z_20] = ratio(s.v - mean, sd, 0.0)
        f[TFO_VOLUME_RATIO_20] = ratio(s.v, mean, 1.0)
    if s.signed_vol.count >= s.signed_vol.n:
        for k in range(s.signed_vol.n):
            sv_sum += s.signed_vol.buf[k]
            v_sum += s.vol10.buf[k]
        f[TFO_SIGNED_VOLUME_10] = ratio(sv_sum, v_sum, 0.0)
    f[TFO_DONCHIAN_POS_20] = ratio(c - s.ll20, s.hh20 - s.ll20, 0.5)
    f[TFO_DIST_HIGH_50_ATR] = per_atr(s.hh50 - c, atr)
    f[TFO_DIST_LOW_50_ATR] = per_atr(c - s.ll50, atr)
    swing = s.swing_high if (s.swing_high_bar >= 0 and s.closed - s.swing_high_bar <= SWING_WINDOW) else s.hh50
    f[TFO_SWING_HIGH_ATR] = per_atr(swing - c, atr)
    swing = s.swing_low if (s.swing_low_bar >= 0 and s.closed - s.swing_low_bar <= SWING_WINDOW) else s.ll50
    f[TFO_SWING_LOW_ATR] = per_atr(c - swing, atr)
    for k in range(TF_BLOCK_LEN):
        if s.closed >= warm_bars[k]:
            warm[k] = 1
        else:
            warm[k] = 0
            f[k] = NAN
