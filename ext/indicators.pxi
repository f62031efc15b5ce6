# Incremental technical indicators, one update per closed bar, in plain C structs.
#
# Each follows TA-Lib's algorithm step for step (seeding, smoothing and the order of the floating-point
# operations), so that a series fed bar by bar gives TA-Lib's batch values; tests/test_indicators.py holds
# them to 1e-9. `count` is the number of values seen; an indicator is ready once `count` reaches the
# length TA-Lib needs before its first output (its lookback + 1).

cdef enum:
    RING_CAP = 64      # longest window any indicator keeps (50 bars) fits

# TA-Lib's zero test for sums and divisors (TA_IS_ZERO in ta_utility.h).
cdef double TA_EPSILON = 1e-14


cdef inline bint ta_is_zero(double v) noexcept nogil:
    return -TA_EPSILON < v < TA_EPSILON


# ---- ring buffer: the last n values, newest first by age --------------------------------------------------

cdef struct Ring:
    double buf[RING_CAP]
    int n          # window length, <= RING_CAP
    int head       # physical slot the next value goes to
    long long count


cdef inline void ring_init(Ring* r, int n) noexcept nogil:
    r.n = n
    r.head = 0
    r.count = 0


cdef inline void ring_push(Ring* r, double x) noexcept nogil:
    r.buf[r.head] = x
    r.head += 1
    if r.head == r.n:
        r.head = 0
    r.count += 1


cdef inline double ring_ago(const Ring* r, int k) noexcept nogil:
    # The value pushed k pushes ago (0 = newest); k < min(count, n).
    cdef int i = r.head - 1 - k
    if i < 0:
        i += r.n
    return r.buf[i]


cdef inline double ring_mean(const Ring* r) noexcept nogil:
    cdef double s = 0.0
    cdef int i
    for i in range(r.n):
        s += r.buf[i]
    return s / r.n


cdef inline double ring_pop_var(const Ring* r, double mean) noexcept nogil:
    # Population variance, two-pass: exact even for prices far from zero.
    cdef double s = 0.0, d
    cdef int i
    for i in range(r.n):
        d = r.buf[i] - mean
        s += d * d
    return s / r.n


cdef inline double ring_pop_std(const Ring* r, double mean) noexcept nogil:
    return sqrt(ring_pop_var(r, mean))


cdef inline double true_range(double h, double l, double prev_close) noexcept nogil:
    cdef double out = h - l
    cdef double t = fabs(h - prev_close)
    if t > out:
        out = t
    t = fabs(l - prev_close)
    if t > out:
        out = t
    return out


# ---- EMA: seeded with the SMA of the first n values ------------------------------------------------------

cdef struct Ema:
    int n
    double k
    long long count
    double sum
    double value


cdef inline void ema_init(Ema* e, int n) noexcept nogil:
    e.n = n
    e.k = 2.0 / (n + 1)
    e.count = 0
    e.sum = 0.0
    e.value = NAN


cdef inline void ema_update(Ema* e, double x) noexcept nogil:
    e.count += 1
    if e.count < e.n:
        e.sum += x
    elif e.count == e.n:
        e.sum += x
        e.value = e.sum / e.n
    else:
        e.value = ((x - e.value) * e.k) + e.value


cdef inline bint ema_ready(const Ema* e) noexcept nogil:
    return e.count >= e.n


# ---- ATR: Wilder-smoothed true range, seeded with the SMA of the first n true ranges -------------------

cdef struct Atr:
    int n
    long long count    # bars seen; the first bar has no true range
    double prev_close
    double sum
    double value


cdef inline void atr_init(Atr* a, int n) noexcept nogil:
    a.n = n
    a.count = 0
    a.prev_close = NAN
    a.sum = 0.0
    a.value = NAN


cdef inline void atr_update(Atr* a, double h, double l, double c) noexcept nogil:
    cdef double tr
    a.count += 1
    if a.count > 1:
        tr = true_range(h, l, a.prev_close)
        if a.count <= a.n:
            a.sum += tr
        elif a.count == a.n + 1:
            a.sum += tr
            a.value = a.sum / a.n
        else:
            a.value = (a.value * (a.n - 1) + tr) / a.n
    a.prev_close = c


cdef inline bint atr_ready(const Atr* a) noexcept nogil:
    return a.count > a.n


# ---- RSI: Wilder-smoothed average gain and loss ----------------------------------------------------------

cdef struct Rsi:
    int n
    long long count
    double prev
    double gain
    double loss
    double value


cdef inline void rsi_init(Rsi* r, int n) noexcept nogil:
    r.n = n
    r.count = 0
    r.prev = NAN
    r.gain = 0.0
    r.loss = 0.0
    r.value = NAN


cdef inline void _rsi_value(Rsi* r) noexcept nogil:
    cdef double s = r.gain + r.loss
    r.value = 100.0 * (r.gain / s) if not ta_is_zero(s) else 0.0


cdef inline void rsi_update(Rsi* r, double x) noexcept nogil:
    r.count += 1
    if r.count == 1:
        r.prev = x
        return
    cdef double d = x - r.prev
    r.prev = x
    if r.count <= r.n + 1:
        if d < 0:
            r.loss -= d
        else:
            r.gain += d
        if r.count == r.n + 1:
            r.loss /= r.n
            r.gain /= r.n
            _rsi_value(r)
        return
    r.loss *= (r.n - 1)
    r.gain *= (r.n - 1)
    if d < 0:
        r.loss -= d
    else:
        r.gain += d
    r.loss /= r.n
    r.gain /= r.n
    _rsi_value(r)


cdef inline bint rsi_ready(const Rsi* r) noexcept nogil:
    return r.count > r.n


# ---- MACD: TA-Lib starts the fast EMA at bar (slow - fast) so both EMAs begin on the same bar -----------

cdef struct Macd:
    int fast_n
    int slow_n
    long long count
    Ema fast
    Ema slow
    Ema signal
    double line
    double hist


cdef inline void macd_init(Macd* m, int fast_n, int slow_n, int signal_n) noexcept nogil:
    m.fast_n = fast_n
    m.slow_n = slow_n
    m.count = 0
    ema_init(&m.fast, fast_n)
    ema_init(&m.slow, slow_n)
    ema_init(&m.signal, signal_n)
    m.line = NAN
    m.hist = NAN


cdef inline void macd_update(Macd* m, double x) noexcept nogil:
    m.count += 1
    ema_update(&m.slow, x)
    if m.count > m.slow_n - m.fast_n:
        ema_update(&m.fast, x)
    if ema_ready(&m.slow):
        m.line = m.fast.value - m.slow.value
        ema_update(&m.signal, m.line)
        if ema_ready(&m.signal):
            m.hist = m.line - m.signal.value


cdef inline bint macd_ready(const Macd* m) noexcept nogil:
    return ema_ready(&m.signal)


# ---- ADX with +DI and -DI: TA-Lib's Wilder sums of directional movement and true range ------------------

cdef struct Adx:
    int n
    long long count
    double prev_high
    double prev_low
    double prev_close
    double plus_dm
    double minus_dm
    double tr
    double sum_dx
    double plus_di
    double minus_di
    double value


cdef inline void adx_init(Adx* a, int n) noexcept nogil:
    a.n = n
    a.count = 0
    a.plus_dm = 0.0
    a.minus_dm = 0.0
    a.tr = 0.0
    a.sum_dx = 0.0
    a.plus_di = NAN
    a.minus_di = NAN
    a.value = NAN


cdef inline void adx_update(Adx* a, double h, double l, double c) noexcept nogil:
    cdef double diff_p, diff_m, tr, s, dx
    cdef bint have_dx = False
    a.count += 1
    if a.count == 1:
        a.prev_high = h
        a.prev_low = l
        a.prev_close = c
        return
    diff_p = h - a.prev_high
    diff_m = a.prev_low - l
    a.prev_high = h
    a.prev_low = l
    tr = true_range(h, l, a.prev_close)
    a.prev_close = c
    if a.count <= a.n:
        # The first n - 1 moves are summed, not smoothed.
        if diff_m > 0 and diff_p < diff_m:
            a.minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            a.plus_dm += diff_p
        a.tr += tr
        return
    a.minus_dm -= a.minus_dm / a.n
    a.plus_dm -= a.plus_dm / a.n
    if diff_m > 0 and diff_p < diff_m:
        a.minus_dm += diff_m
    elif diff_p > 0 and diff_p > diff_m:
        a.plus_dm += diff_p
    a.tr = a.tr - (a.tr / a.n) + tr
    if not ta_is_zero(a.tr):
        a.minus_di = 100.0 * (a.minus_dm / a.tr)
        a.plus_di = 100.0 * (a.plus_dm / a.tr)
        s = a.minus_di + a.plus_di
        if not ta_is_zero(s):
            dx = 100.0 * (fabs(a.minus_di - a.plus_di) / s)
            have_dx = True
    else:
        a.minus_di = 0.0
        a.plus_di = 0.0
    if a.count <= 2 * a.n:
        if have_dx:
            a.sum_dx += dx
        if a.count == 2 * a.n:
            a.value = a.sum_dx / a.n
    elif have_dx:
        a.value = ((a.value * (a.n - 1)) + dx) / a.n


cdef inline bint adx_di_ready(const Adx* a) noexcept nogil:
    return a.count > a.n


cdef inline bint adx_ready(const Adx* a) noexcept nogil:
    return a.count >= 2 * a.n


# ---- Stochastic slow %K / %D: fast %K over n bars, then two 3-bar SMAs ----------------------------------

cdef struct Stoch:
    long long count
    Ring fast_k
    Ring slow_k
    double k
    double d


cdef inline void stoch_init(Stoch* s, int slow_k_n, int slow_d_n) noexcept nogil:
    s.count = 0
    ring_init(&s.fast_k, slow_k_n)
    ring_init(&s.slow_k, slow_d_n)
    s.k = NAN
    s.d = NAN


cdef inline void stoch_update(Stoch* s, double c, double highest, double lowest) noexcept nogil:
    # highest/lowest: of the last n bars including this one; the caller feeds from bar n on.
    cdef double diff = (highest - lowest) / 100.0
    s.count += 1
    ring_push(&s.fast_k, (c - lowest) / diff if diff != 0.0 else 0.0)
    if s.fast_k.count >= s.fast_k.n:
        s.k = ring_mean(&s.fast_k)
        ring_push(&s.slow_k, s.k)
        if s.slow_k.count >= s.slow_k.n:
            s.d = ring_mean(&s.slow_k)


# ---- CCI: typical price against its SMA, over the mean absolute deviation --------------------------------

cdef inline double cci_value(const Ring* tp) noexcept nogil:
    # Sums run over the ring's physical slots, as TA-Lib sums its circular buffer.
    cdef double avg = ring_mean(tp), md = 0.0
    cdef int i
    for i in range(tp.n):
        md += fabs(tp.buf[i] - avg)
    cdef double last = ring_ago(tp, 0)
    cdef double dev = last - avg
    # A flat window leaves one-ulp noise in both: TA-Lib's zero test turns it into the 0 it really is.
    if not ta_is_zero(dev) and not ta_is_zero(md):
        return dev / (0.015 * (md / tp.n))
    return 0.0
