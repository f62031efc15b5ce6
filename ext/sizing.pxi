# Position sizing down to micro lots: how much to risk, how far the stop really is, and the caps.
#
# Risk money = equity x base risk (scaled by signal quality) x volatility adjustment x recent performance
# x diversification x regime x the risk controller (the "full" sizer; the "plain" one stops after the
# volatility adjustment). Volume = risk money / (stop distance / tick size x tick value), rounded down to
# the volume step. The stop distance used for sizing is the larger of the stop loss distance and the
# CVaR of recent adverse moves over the expected holding time, so fat tails shrink the size.

from libc.stdlib cimport qsort

cdef enum:
    CVAR_CAP = 1024
    N_CLASSES = 5


cdef struct SizingParams:
    bint full
    double base_min_frac
    double base_max_frac
    double quality_min
    double quality_max
    double high_vol_factor
    double trend_factor
    double range_factor
    double cvar_level
    int cvar_window
    int holding_bars
    int max_positions
    int max_adds                       # adds per position group, DCA and scale-in together
    double max_exposure_frac
    double concentration_share
    double daily_budget_frac
    double class_max_lots[N_CLASSES]
    double class_max_notional_frac[N_CLASSES]
    double diversification_floor


cdef int _cmp_desc(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const double*>a)[0], y = (<const double*>b)[0]
    return -1 if x > y else (1 if x < y else 0)


cdef inline double cvar_adverse(const double* closes, long long count, int head, int ring_cap, int window,
                                int holding, int side, double level, double* scratch) noexcept nogil:
    """Mean of the worst (1 - level) share of adverse moves over ``holding`` bars, among the newest ``window``
    closes of a ring of ``ring_cap`` slots whose next write goes to ``head``."""
    cdef int m = <int>(count if count < ring_cap else ring_cap), t, n = 0, k, first
    if window < m:
        m = window
    first = head - m
    cdef double a, b, loss, s = 0.0
    if m <= holding:
        return 0.0
    if first < 0:
        first += ring_cap
    for t in range(m - holding):
        a = closes[(first + t) % ring_cap]
        b = closes[(first + t + holding) % ring_cap]
        loss = (a - b) * side
        scratch[n] = loss if loss > 0.0 else 0.0
        n += 1
    qsort(scratch, n, sizeof(double), _cmp_desc)
    k = <int>((1.0 - level) * n)
    if k < 1:
        k = 1
    for t in range(k):
        s += scratch[t]
    return s / k


cdef inline double round_volume_down(const SymbolSpec* s, double volume) noexcept nogil:
    # A hair of tolerance so that 0.3 / 0.01 = 29.999999... still gives 30 steps.
    cdef double steps = floor(volume / s.volume_step + 1e-9)
    cdef double v = steps * s.volume_step
    if v > s.volume_max:
        v = floor(s.volume_max / s.volume_step + 1e-9) * s.volume_step
    return v


cdef inline double signal_quality(double score, double confidence, double min_score, double min_conf,
                                  double q_min, double q_max) noexcept nogil:
    """0.6..1.0 by default: half from how far the score clears its minimum, half from the confidence."""
    cdef double a = (score - min_score) / (100.0 - min_score) if min_score < 100.0 else 1.0
    cdef double b = (confidence - min_conf) / (1.0 - min_conf) if min_conf < 1.0 else 1.0
    a = 0.0 if a < 0.0 else (1.0 if a > 1.0 else a)
    b = 0.0 if b < 0.0 else (1.0 if b > 1.0 else b)
    return q_min + (q_max - q_min) * 0.5 * (a + b)
