# Multi-timeframe alignment: do M1, M5, M15 and H1 agree? Read from each timeframe's last closed bar,
# refreshed whenever any bar closes.

cdef inline bint _all_closed(const TfState* tf, long long bars) noexcept nogil:
    cdef int i
    for i in range(N_TIMEFRAMES):
        if tf[i].closed < bars:
            return False
    return True


cdef inline void mtf_write_features(const TfState* tf, double* f, unsigned char* warm) noexcept nogil:
    cdef double trend = 0.0, above = 0.0, rsi = 0.0, macd = 0.0, di = 0.0, adx = 0.0
    cdef int i
    cdef const TfState* s
    for i in range(N_TIMEFRAMES):
        s = &tf[i]
        trend += sign(s.ema20.value - s.ema50.value)
        above += sign(ring_ago(&s.closes, 0) - s.ema200.value)
        rsi += (s.rsi14.value - 50.0) / 50.0
        macd += sign(s.macd.hist)
        di += sign(s.adx14.plus_di - s.adx14.minus_di)
        adx += s.adx14.value
    warm[F_MTF_TREND_ALIGN] = _all_closed(tf, 50)
    warm[F_MTF_EMA200_ALIGN] = _all_closed(tf, 200)
    warm[F_MTF_RSI_ALIGN] = _all_closed(tf, 15)
    warm[F_MTF_MACD_ALIGN] = _all_closed(tf, 34)
    warm[F_MTF_DI_ALIGN] = _all_closed(tf, 15)
    warm[F_MTF_ADX_MEAN] = _all_closed(tf, 28)
    warm[F_MTF_VOL_TERM] = _all_closed(tf, 15)
    f[F_MTF_TREND_ALIGN] = trend / N_TIMEFRAMES
    f[F_MTF_EMA200_ALIGN] = above / N_TIMEFRAMES
    f[F_MTF_RSI_ALIGN] = rsi / N_TIMEFRAMES
    f[F_MTF_MACD_ALIGN] = macd / N_TIMEFRAMES
    f[F_MTF_DI_ALIGN] = di / N_TIMEFRAMES
    f[F_MTF_ADX_MEAN] = adx / N_TIMEFRAMES
    # per-minute volatility of M5 against H1: above 1 when the short horizon runs hotter than the long one
    f[F_MTF_VOL_TERM] = ratio(tf[1].atr14.value / sqrt(5.0), tf[3].atr14.value / sqrt(60.0), 1.0)
    for i in range(F_MTF_TREND_ALIGN, F_MTF_VOL_TERM + 1):
        if not warm[i]:
            f[i] = NAN
