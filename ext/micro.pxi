# Tick-level microstructure of one symbol: spread and its z-score against its recent and typical values,
# tick arrival rate, and the balance of up- and down-ticks. All exponentially weighted: O(1) per tick and
# no history kept.

cdef double ALPHA_100 = 2.0 / 101.0
cdef double ALPHA_1000 = 2.0 / 1001.0
cdef double RATE_FAST_S = 60.0
cdef double RATE_SLOW_S = 900.0


cdef struct Micro:
    long long ticks
    long long first_ms
    long long last_ms
    double spread_mean
    double spread_var
    double spread_typical
    double mid_mean
    double prev_mid
    double imbalance
    double count_fast      # tick count decayed with a 60 s time constant
    double count_slow      # the same with 900 s


cdef inline void micro_init(Micro* m) noexcept nogil:
    m.ticks = 0


cdef inline void micro_update(Micro* m, long long t_ms, double bid, double ask) noexcept nogil:
    cdef double spread = ask - bid, mid = 0.5 * (ask + bid), diff, dt
    m.ticks += 1
    if m.ticks == 1:
        m.first_ms = t_ms
        m.spread_mean = spread
        m.spread_var = 0.0
        m.spread_typical = spread
        m.mid_mean = mid
        m.prev_mid = mid
        m.imbalance = 0.0
        m.count_fast = 1.0
        m.count_slow = 1.0
    else:
        diff = spread - m.spread_mean
        m.spread_mean += ALPHA_100 * diff
        m.spread_var = (1.0 - ALPHA_100) * (m.spread_var + ALPHA_100 * diff * diff)
        m.spread_typical += ALPHA_1000 * (spread - m.spread_typical)
        m.mid_mean += ALPHA_100 * (mid - m.mid_mean)
        m.imbalance += ALPHA_100 * (sign(mid - m.prev_mid) - m.imbalance)
        m.prev_mid = mid
        dt = (t_ms - m.last_ms) / 1000.0
        if dt > 0.0:
            m.count_fast = m.count_fast * exp(-dt / RATE_FAST_S) + 1.0
            m.count_slow = m.count_slow * exp(-dt / RATE_SLOW_S) + 1.0
        else:
            m.count_fast += 1.0
            m.count_slow += 1.0
    m.last_ms = t_ms


cdef inline double _tick_rate(double count, double tau_s, double elapsed_s) noexcept nogil:
    # Dividing by (1 - exp(-E/tau)) removes the start-up bias of a decayed count.
    return count / (tau_s * (1.0 - exp(-elapsed_s / tau_s)))


cdef inline void micro_write_features(const Micro* m, double bid, double ask, double m1_atr, bint m1_atr_ready,
                                      double* f, unsigned char* warm) noexcept nogil:
    cdef double spread = ask - bid, mid = 0.5 * (ask + bid)
    cdef double elapsed_s = (m.last_ms - m.first_ms) / 1000.0
    cdef bint enough_ticks = m.ticks >= 100
    cdef bint enough_time = elapsed_s >= RATE_FAST_S
    cdef double fast, slow
    f[F_SPREAD_BPS] = 10000.0 * spread / mid
    warm[F_SPREAD_BPS] = 1
    if enough_ticks:
        f[F_SPREAD_Z_100] = (spread - m.spread_mean) / sqrt(m.spread_var) if m.spread_var > 0.0 else 0.0
        f[F_SPREAD_RATIO_1000] = ratio(spread, m.spread_typical, 1.0)
        f[F_TICK_IMBALANCE_100] = m.imbalance
    else:
        f[F_SPREAD_Z_100] = f[F_SPREAD_RATIO_1000] = f[F_TICK_IMBALANCE_100] = NAN
    warm[F_SPREAD_Z_100] = warm[F_SPREAD_RATIO_1000] = warm[F_TICK_IMBALANCE_100] = enough_ticks
    if m1_atr_ready:
        f[F_SPREAD_ATR_M1] = per_atr(spread, m1_atr)
    else:
        f[F_SPREAD_ATR_M1] = NAN
    warm[F_SPREAD_ATR_M1] = m1_atr_ready
    if enough_ticks and m1_atr_ready:
        f[F_MID_DEV_100_ATR_M1] = per_atr(mid - m.mid_mean, m1_atr)
    else:
        f[F_MID_DEV_100_ATR_M1] = NAN
    warm[F_MID_DEV_100_ATR_M1] = enough_ticks and m1_atr_ready
    if enough_time:
        fast = _tick_rate(m.count_fast, RATE_FAST_S, elapsed_s)
        slow = _tick_rate(m.count_slow, RATE_SLOW_S, elapsed_s)
        f[F_TICK_RATE_60S] = fast
        f[F_TICK_RATE_RATIO_60_900] = ratio(fast, slow, 1.0)
    else:
        f[F_TICK_RATE_60S] = f[F_TICK_RATE_RATIO_60_900] = NAN
    warm[F_TICK_RATE_60S] = warm[F_TICK_RATE_RATIO_60_900] = enough_time
