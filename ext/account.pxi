# The account's FTMO guard: the equity floors, the Prague day, the trading state and the risk controller.
#
# FTMO's arithmetic (2-Step): the daily floor is the balance at midnight Europe/Prague minus 5 % of the
# initial balance; the overall floor is the initial balance minus 10 % of it (or, for the 1-Step product,
# the highest end-of-day balance, never below initial, minus 10 %). Both are equity floors: floating P/L,
# swaps and commissions count. The engine keeps a share of each allowance in reserve (REDUCING, then
# HALTED) and refuses any command whose worst case would cross a floor plus the safety buffer.

cdef enum:
    STATE_ACTIVE = 0
    STATE_REDUCING = 1
    STATE_HALTED = 2

cdef enum:
    PERF_CAP = 256


cdef struct GuardParams:
    double initial_balance        # 0 = the first balance seen
    double daily_loss_frac
    double max_loss_frac
    bint max_loss_trailing        # 1-Step: end-of-day trailing maximum loss
    double target_frac            # 0 = no target
    int min_trading_days
    double best_day_max_share     # 1-Step Best Day Rule; 0 = no such rule
    bint stop_at_target
    double buffer_frac            # of initial balance
    double slippage_frac          # of each stop distance
    double reduce_share
    double halt_share
    double internal_daily_frac
    double internal_weekly_frac
    int losing_streak
    double streak_factor
    double recovery_frac
    double recovery_factor
    double breaker_frac
    long long breaker_ms
    bint breaker_flatten          # the tripped breaker closes everything, not only stops entries
    int perf_window
    double perf_min
    double perf_max


cdef struct Account:
    GuardParams p
    bint started
    double initial
    double balance
    double equity
    long long now_ms
    long long day_key             # Prague calendar day (days since 1970 in Prague local time)
    long long week_key            # Prague week, Monday-based
    double day_start_balance
    double week_start_balance
    double day_peak_equity
    double highest_eod_balance
    double equity_high
    double best_day_profit
    int state
    int state_reason
    bint halted_today             # a daily halt lasts until the Prague day rolls
    bint halted_for_good          # the overall limit's halt lasts until the operator resumes
    int operator_halt             # 0 none, 1 no new risk, 2 flatten
    bint stopped_today            # internal daily drawdown stop
    bint stopped_this_week        # internal weekly drawdown stop
    long long breaker_until_ms
    bint breaker_flatten_pending  # tripped with breaker_flatten: CLOSE_ALL until the book is flat
    int streak
    bint recovery
    int trading_days
    long long last_trading_day
    double perf_r[PERF_CAP]       # R-multiples of the last closed trades, a ring
    int perf_n
    int perf_head
    DstYear dst


cdef inline void account_init(Account* a, GuardParams p) noexcept nogil:
    a.p = p
    a.started = False
    a.initial = p.initial_balance
    a.state = STATE_ACTIVE
    a.state_reason = R_NONE
    a.halted_today = a.halted_for_good = False
    a.operator_halt = 0
    a.stopped_today = a.stopped_this_week = False
    a.breaker_until_ms = -(1LL << 62)
    a.breaker_flatten_pending = False
    a.streak = 0
    a.recovery = False
    a.trading_days = 0
    a.last_trading_day = -(1LL << 62)
    a.best_day_profit = 0.0
    a.perf_n = 0
    a.perf_head = 0
    a.dst.year = -1


cdef inline long long prague_day(Account* a, long long t_ms) noexcept nogil:
    dst_year_for(&a.dst, t_ms)
    return floor_div(t_ms + prague_offset_ms(&a.dst, t_ms), MS_PER_DAY)


cdef inline double daily_floor(const Account* a) noexcept nogil:
    return a.day_start_balance - a.p.daily_loss_frac * a.initial


cdef inline double overall_floor(const Account* a) noexcept nogil:
    cdef double ref = a.initial
    if a.p.max_loss_trailing and a.highest_eod_balance > ref:
        ref = a.highest_eod_balance
    return ref - a.p.max_loss_frac * a.initial


cdef inline double equity_floor(const Account* a) noexcept nogil:
    """The binding floor: equity must stay above both."""
    cdef double d = daily_floor(a), o = overall_floor(a)
    return d if d > o else o


cdef inline double floor_after_close(const Account* a) noexcept nogil:
    """The floor on the day the market reopens after the weekend, for positions held over the close: that
    day's limit starts from the balance at its Prague midnight (today's, if nothing more closes) and, on the
    1-Step, the trailing floor may have risen to today's balance."""
    cdef double daily = a.balance - a.p.daily_loss_frac * a.initial
    cdef double ref = a.initial
    if a.p.max_loss_trailing:
        if a.highest_eod_balance > ref:
            ref = a.highest_eod_balance
        if a.balance > ref:
            ref = a.balance
    cdef double overall = ref - a.p.max_loss_frac * a.initial
    return daily if daily > overall else overall


cdef inline double safety_buffer(const Account* a) noexcept nogil:
    return a.p.buffer_frac * a.initial


cdef inline void _roll_day(Account* a, long long day) noexcept nogil:
    # The balance at Prague midnight is the last balance seen before it: the previous tick's.
    cdef double closed_profit = a.balance - a.day_start_balance
    if closed_profit > a.best_day_profit:
        a.best_day_profit = closed_profit
    a.day_key = day
    a.day_start_balance = a.balance
    if a.balance > a.highest_eod_balance:
        a.highest_eod_balance = a.balance
    a.day_peak_equity = a.equity
    a.halted_today = False
    a.stopped_today = False
    # Prague weeks start on Monday: day 0 (1970-01-01) was a Thursday.
    cdef long long week = floor_div(day + 3, 7)
    if week != a.week_key:
        a.week_key = week
        a.week_start_balance = a.balance
        a.stopped_this_week = False


cdef inline double daily_used_share(const Account* a) noexcept nogil:
    return (a.day_start_balance - a.equity) / (a.p.daily_loss_frac * a.initial)


cdef inline double overall_used_share(const Account* a) noexcept nogil:
    cdef double floor_ = overall_floor(a)
    return (floor_ + a.p.max_loss_frac * a.initial - a.equity) / (a.p.max_loss_frac * a.initial)


cdef inline double best_day_profit(const Account* a) noexcept nogil:
    """The largest closed profit of one Prague day, today's so far included."""
    cdef double today = a.balance - a.day_start_balance
    return today if today > a.best_day_profit else a.best_day_profit


cdef inline bint target_reached(const Account* a) noexcept nogil:
    """Every objective of the phase met: the profit target on closed balance, the minimum trading days and,
    on the 1-Step, the Best Day Rule (until it holds the challenge has not passed: trading goes on)."""
    cdef double profit = a.balance - a.initial
    if not (a.p.target_frac > 0.0 and profit >= a.p.target_frac * a.initial
            and a.trading_days >= a.p.min_trading_days):
        return False
    return a.p.best_day_max_share <= 0.0 or best_day_profit(a) <= a.p.best_day_max_share * profit


cdef inline void _evaluate_state(Account* a) noexcept nogil:
    cdef double daily = daily_used_share(a), overall = overall_used_share(a)
    if a.operator_halt == 2:
        a.state, a.state_reason = STATE_HALTED, R_OPERATOR_HALT
        return
    if overall >= a.p.halt_share:
        a.halted_for_good = True
    if daily >= a.p.halt_share:
        a.halted_today = True
    if a.halted_for_good:
        a.state, a.state_reason = STATE_HALTED, R_OVERALL_LIMIT_HALT
    elif a.halted_today:
        a.state, a.state_reason = STATE_HALTED, R_DAILY_LIMIT_HALT
    elif a.operator_halt == 1:
        a.state, a.state_reason = STATE_REDUCING, R_OPERATOR_HALT
    elif overall >= a.p.reduce_share:
        a.state, a.state_reason = STATE_REDUCING, R_OVERALL_LIMIT_REDUCE
    elif daily >= a.p.reduce_share:
        a.state, a.state_reason = STATE_REDUCING, R_DAILY_LIMIT_REDUCE
    elif a.stopped_this_week:
        a.state, a.state_reason = STATE_REDUCING, R_INTERNAL_WEEKLY_DD
    elif a.stopped_today:
        a.state, a.state_reason = STATE_REDUCING, R_INTERNAL_DAILY_DD
    elif a.now_ms < a.breaker_until_ms:
        a.state, a.state_reason = STATE_REDUCING, R_CIRCUIT_BREAKER
    elif a.p.stop_at_target and target_reached(a):
        a.state, a.state_reason = STATE_REDUCING, R_TARGET_REACHED
    else:
        a.state, a.state_reason = STATE_ACTIVE, R_NONE


cdef inline void account_on_tick(Account* a, long long t_ms, double balance, double equity) noexcept nogil:
    """Fold one account snapshot in: day roll, peaks, stops, breaker, state."""
    cdef long long day = prague_day(a, t_ms)
    if not a.started:
        a.started = True
        if a.initial <= 0.0:
            a.initial = balance
        a.balance = balance
        a.equity = equity
        a.day_key = day
        a.week_key = floor_div(day + 3, 7)
        a.day_start_balance = balance
        a.week_start_balance = balance
        a.highest_eod_balance = balance
        a.day_peak_equity = equity
        a.equity_high = equity
    elif day != a.day_key:
        _roll_day(a, day)
    a.now_ms = t_ms
    a.balance = balance
    a.equity = equity
    if equity > a.day_peak_equity:
        a.day_peak_equity = equity
    if equity >= a.equity_high:
        a.equity_high = equity
        a.recovery = False
    elif (a.equity_high - equity) >= a.p.recovery_frac * a.equity_high:
        a.recovery = True
    if (a.day_start_balance - equity) >= a.p.internal_daily_frac * a.day_start_balance:
        a.stopped_today = True
    if (a.week_start_balance - equity) >= a.p.internal_weekly_frac * a.week_start_balance:
        a.stopped_this_week = True
    if (a.day_peak_equity - equity) >= a.p.breaker_frac * a.day_peak_equity and t_ms >= a.breaker_until_ms:
        a.breaker_until_ms = t_ms + a.p.breaker_ms
        if a.p.breaker_flatten:
            a.breaker_flatten_pending = True
        # A new pause starts from a new reference: otherwise it would re-arm on every tick after expiry.
        a.day_peak_equity = equity
    _evaluate_state(a)


cdef inline void account_on_trade_closed(Account* a, double r_multiple, double profit) noexcept nogil:
    if profit < 0.0:
        a.streak += 1
    elif profit > 0.0:
        a.streak = 0
    cdef int cap = a.p.perf_window if 0 < a.p.perf_window <= PERF_CAP else PERF_CAP
    a.perf_r[a.perf_head] = r_multiple
    a.perf_head = (a.perf_head + 1) % cap
    if a.perf_n < cap:
        a.perf_n += 1


cdef inline void account_on_position_opened(Account* a, long long t_ms) noexcept nogil:
    cdef long long day = prague_day(a, t_ms)
    # Only a later day counts: positions opened on earlier days are met again when a restarted bridge adopts
    # them, and counting every change of day among them counted the same days twice.
    if day > a.last_trading_day:
        a.last_trading_day = day
        a.trading_days += 1


cdef inline double controller_multiplier(const Account* a) noexcept nogil:
    """Risk cut by the losing streak and by recovery mode (they compound)."""
    cdef double m = 1.0
    if a.streak >= a.p.losing_streak:
        m *= a.p.streak_factor
    if a.recovery:
        m *= a.p.recovery_factor
    return m


cdef inline double performance_multiplier(const Account* a) noexcept nogil:
    """1 + 0.3 x the mean R of the recent trades (win rate and size of wins and losses in one number),
    clipped to [perf_min, perf_max]; neutral until five trades have closed."""
    cdef double s = 0.0, m
    cdef int i
    if a.perf_n < 5:
        return 1.0
    for i in range(a.perf_n):
        s += a.perf_r[i]
    m = 1.0 + 0.3 * (s / a.perf_n)
    if m < a.p.perf_min:
        return a.p.perf_min
    if m > a.p.perf_max:
        return a.p.perf_max
    return m
