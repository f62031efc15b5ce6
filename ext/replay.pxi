# Replay's hot loop: recorded ticks fed to the decision engine with FTMO's own accounting kept beside it.
#
# The broker (mt5bridge/simulator.py, the same one the EA simulator uses) lives in Python and acts only when
# something happens: a stop or target is reached, or the engine emits a command. Between those moments every
# tick is handled here, in C: the quote, the account's equity from a mirror of the open positions, FTMO's
# daily and overall floors measured the way FTMO measures them (independently of the engine's own guard, so a
# replay can catch the engine out), and the engine's tick — the very calls the bridge's node makes.

cdef enum:
    RUN_END = 0          # every tick up to `end` was handled
    RUN_STOP = 1         # tick `i` reaches a position's stop or target: the broker must close it first
    RUN_COMMAND = 2      # the engine emitted a command on tick `i`
    RUN_REFUSED = 3      # the engine refused tick `i` (time going backwards, a bad price)
    RUN_ROLLOVER = 4     # the daily rollover passed before tick `i`, with positions open: swaps are due
    MAX_REASON_CODES = 128


cdef struct MirrorPosition:
    int sym
    int side
    double volume
    double open_price
    double sl
    double tp
    double swap
    double money_per_price


cdef inline double _cents(double x) noexcept nogil:
    # The broker keeps money in cents, as MT5 does; the mirror rounds each position's profit the same way.
    return floor(x * 100.0 + 0.5) / 100.0


cdef class ReplayLoop:
    """Runs ticks of several symbols through one account's decision engine until something needs the broker.

    Times are UTC ms. ``run`` returns ``(i, kind)``: kind 0 when it reached ``end``, 1 when tick ``i`` reaches
    a stop or target (the engine has not seen it: close at the broker, ``set_book``, then ``run`` from ``i``
    with ``skip_stops=True``), 2 when the engine emitted a command on tick ``i`` (the engine has seen it),
    3 when the engine refused tick ``i``, 4 when the daily rollover passed before tick ``i`` with positions open
    and swaps to charge (``rollover_nights`` of them: the broker charges them, ``set_book``, then ``run`` from
    ``i`` again).
    """

    cdef DecisionEngine engine
    cdef MirrorPosition pos[MAX_POSITIONS]
    cdef int n_pos
    cdef double balance
    cdef double margin
    cdef readonly double initial_balance
    cdef double bids[MAX_SYMBOLS]
    cdef double asks[MAX_SYMBOLS]
    cdef bint quoted[MAX_SYMBOLS]
    cdef readonly long long last_time_ms
    cdef readonly double equity
    # FTMO's accounting
    cdef double daily_frac
    cdef double max_frac
    cdef bint trailing
    cdef DstYear dst
    cdef readonly long long day_key
    cdef readonly double day_start_balance
    cdef readonly double highest_eod_balance
    cdef double day_min_equity
    cdef bint daily_breached_today
    cdef bint overall_breached
    cdef readonly double max_daily_loss        # money: day start balance - lowest equity of the day, worst day
    cdef readonly double max_overall_loss      # money: overall reference - lowest equity
    cdef readonly double equity_peak
    cdef readonly double max_drawdown_frac     # peak-to-trough of equity, as a share of the peak
    cdef long long refusal_count[MAX_REASON_CODES]
    cdef readonly long long ticks
    # The FX rollover, 17:00 New York on weekdays: swaps are charged there (three nights on Wednesday's).
    cdef bint charge_swaps
    cdef DstYear ny_dst
    cdef long long next_rollover_ms
    cdef readonly int rollover_nights          # nights due at the RUN_ROLLOVER just returned
    # What the report draws and lists (appended to rarely: per sample interval, per day, per breach).
    cdef long long sample_ms
    cdef long long next_sample_ms
    cdef readonly list samples                 # (time_ms, equity, balance, daily_floor, overall_floor)
    cdef readonly list days                    # (prague_day, start_balance, end_balance, lowest_equity)
    cdef readonly list breaches                # (time_ms, rule, equity, floor)

    def __init__(self, DecisionEngine engine, double initial_balance, double daily_loss_pct, double max_loss_pct,
                 bint eod_trailing, long long sample_ms):
        if not initial_balance > 0:
            raise ValueError(f"initial balance must be > 0, got {initial_balance!r}")
        if sample_ms <= 0:
            raise ValueError(f"sample interval must be > 0 ms, got {sample_ms}")
        self.engine = engine
        self.n_pos = 0
        self.balance = initial_balance
        self.equity = initial_balance
        self.margin = 0.0
        self.initial_balance = initial_balance
        self.daily_frac = daily_loss_pct / 100.0
        self.max_frac = max_loss_pct / 100.0
        self.trailing = eod_trailing
        self.dst.year = -1
        self.day_key = -(1 << 62)
        self.day_start_balance = initial_balance
        self.highest_eod_balance = initial_balance
        self.day_min_equity = initial_balance
        self.daily_breached_today = False
        self.overall_breached = False
        self.max_daily_loss = 0.0
        self.max_overall_loss = 0.0
        self.equity_peak = initial_balance
        self.max_drawdown_frac = 0.0
        self.ticks = 0
        self.charge_swaps = False
        self.ny_dst.year = -1
        self.next_rollover_ms = -(1 << 62)
        self.rollover_nights = 0
        self.last_time_ms = -(1 << 62)
        self.sample_ms = sample_ms
        self.next_sample_ms = -(1 << 62)
        self.samples = []
        self.days = []
        self.breaches = []
        cdef int i
        for i in range(MAX_SYMBOLS):
            self.quoted[i] = False
            self.bids[i] = 0.0
            self.asks[i] = 0.0
        for i in range(MAX_REASON_CODES):
            self.refusal_count[i] = 0

    @cython.boundscheck(True)
    def set_book(self, double balance, double margin, const int[:] sym, const int[:] side, const double[:] volume,
                 const double[:] open_price, const double[:] sl, const double[:] tp, const double[:] swap,
                 const double[:] money_per_price):
        """The broker's open positions, balance and margin, after anything changed them."""
        cdef Py_ssize_t n = sym.shape[0], j
        if n > MAX_POSITIONS:
            raise ValueError(f"{n} positions: at most {MAX_POSITIONS} are tracked")
        for j in range(n):
            self.pos[j].sym = sym[j]
            self.pos[j].side = side[j]
            self.pos[j].volume = volume[j]
            self.pos[j].open_price = open_price[j]
            self.pos[j].sl = sl[j]
            self.pos[j].tp = tp[j]
            self.pos[j].swap = swap[j]
            self.pos[j].money_per_price = money_per_price[j]
        self.n_pos = <int>n
        self.balance = balance
        self.margin = margin
        self.equity = self._equity()

    def charge_swaps_at_rollover(self, bint on):
        """Stop at each rollover passed with positions open (RUN_ROLLOVER), so the broker charges swaps."""
        self.charge_swaps = on

    def next_rollover_after(self, long long t):
        """The first rollover (UTC ms) after ``t``: 17:00 New York time, Monday to Friday."""
        return self._next_rollover(t)

    cdef long long _next_rollover(self, long long t) noexcept nogil:
        cdef long long local, day, candidate
        dst_year_for(&self.ny_dst, t)
        local = t + new_york_offset_ms(&self.ny_dst, t)
        day = floor_div(local, MS_PER_DAY)
        if local - day * MS_PER_DAY >= 17 * MS_PER_HOUR:
            day += 1
        while weekday_from_days(day) >= 5:   # Saturday, Sunday: no rollover
            day += 1
        candidate = day * MS_PER_DAY + 17 * MS_PER_HOUR
        # Back to UTC with New York's offset at that local time (the clocks change at 02:00 on a Sunday, never
        # near 17:00, so the offset five hours earlier is the same).
        dst_year_for(&self.ny_dst, candidate)
        return candidate - new_york_offset_ms(&self.ny_dst, candidate - 5 * MS_PER_HOUR)

    def quotes(self):
        """The last quote of every symbol seen so far: {symbol index: (bid, ask)}."""
        return {i: (self.bids[i], self.asks[i]) for i in range(MAX_SYMBOLS) if self.quoted[i]}

    def refusals(self):
        """Ticks the engine held on, by reason code index."""
        return {i: self.refusal_count[i] for i in range(MAX_REASON_CODES) if self.refusal_count[i]}

    def floors(self):
        """(daily floor, overall floor) as FTMO measures them now."""
        return self._daily_floor(), self._overall_floor()

    def finish(self):
        """Close the last day and take a last sample: call once after the last tick."""
        if self.day_key != -(1 << 62):
            self.days.append((self.day_key, self.day_start_balance, self.balance, self.day_min_equity))
        if self.last_time_ms != -(1 << 62):
            self._sample(self.last_time_ms)

    cdef inline double _daily_floor(self) noexcept nogil:
        return self.day_start_balance - self.daily_frac * self.initial_balance

    cdef inline double _overall_reference(self) noexcept nogil:
        if self.trailing and self.highest_eod_balance > self.initial_balance:
            return self.highest_eod_balance
        return self.initial_balance

    cdef inline double _overall_floor(self) noexcept nogil:
        return self._overall_reference() - self.max_frac * self.initial_balance

    cdef double _equity(self) noexcept nogil:
        cdef double floating = 0.0, price
        cdef int k
        cdef MirrorPosition* p
        for k in range(self.n_pos):
            p = &self.pos[k]
            if not self.quoted[p.sym]:
                continue
            price = self.bids[p.sym] if p.side > 0 else self.asks[p.sym]
            floating += _cents((price - p.open_price) * p.side * p.volume * p.money_per_price) + p.swap
        return _cents(self.balance + floating)

    cdef bint _reaches_stop(self, int s, double bid, double ask) noexcept nogil:
        # The broker's rule (SimulatedBroker._stop_or_target): buys close on the bid, sells on the ask.
        cdef int k
        cdef MirrorPosition* p
        for k in range(self.n_pos):
            p = &self.pos[k]
            if p.sym != s:
                continue
            if p.side > 0:
                if (p.sl > 0.0 and bid <= p.sl) or (p.tp > 0.0 and bid >= p.tp):
                    return True
            else:
                if (p.sl > 0.0 and ask >= p.sl) or (p.tp > 0.0 and ask <= p.tp):
                    return True
        return False

    cdef void _sample(self, long long t):
        self.samples.append((t, self.equity, self.balance, self._daily_floor(), self._overall_floor()))

    cdef void _roll_day(self, long long t):
        """Open the Prague day of tick ``t`` if it is a new one: the day-start balance is the balance before
        anything the tick does, so a stop the day's first tick fills (a weekend or Monday-open gap) is that
        day's loss, as FTMO books it, not the day before's."""
        dst_year_for(&self.dst, t)
        cdef long long day = floor_div(t + prague_offset_ms(&self.dst, t), MS_PER_DAY)
        if day != self.day_key:
            if self.day_key != -(1 << 62):
                self.days.append((self.day_key, self.day_start_balance, self.balance, self.day_min_equity))
                if self.balance > self.highest_eod_balance:
                    self.highest_eod_balance = self.balance
            self.day_key = day
            # FTMO measures the day from the balance at Prague midnight; nothing trades between midnight and
            # the day's first tick, so the balance now is that balance.
            self.day_start_balance = self.balance
            self.day_min_equity = self.equity
            self.daily_breached_today = False

    cdef void _account(self, long long t):
        """FTMO's view of this tick: the Prague day, the floors, the worst losses, any breach."""
        cdef double loss, daily_floor, overall_floor
        self._roll_day(t)
        if self.equity < self.day_min_equity:
            self.day_min_equity = self.equity
        loss = self.day_start_balance - self.equity
        if loss > self.max_daily_loss:
            self.max_daily_loss = loss
        loss = self._overall_reference() - self.equity
        if loss > self.max_overall_loss:
            self.max_overall_loss = loss
        if self.equity > self.equity_peak:
            self.equity_peak = self.equity
        elif self.equity_peak > 0 and (self.equity_peak - self.equity) / self.equity_peak > self.max_drawdown_frac:
            self.max_drawdown_frac = (self.equity_peak - self.equity) / self.equity_peak
        daily_floor = self._daily_floor()
        overall_floor = self._overall_floor()
        if self.equity < daily_floor and not self.daily_breached_today:
            self.daily_breached_today = True
            self.breaches.append((t, "max_daily_loss", self.equity, daily_floor))
            self._sample(t)
        if self.equity < overall_floor and not self.overall_breached:
            self.overall_breached = True
            self.breaches.append((t, "max_loss", self.equity, overall_floor))
            self._sample(t)
        if t >= self.next_sample_ms:
            self._sample(t)
            self.next_sample_ms = (floor_div(t, self.sample_ms) + 1) * self.sample_ms

    def sample_now(self):
        """Record a point of the equity chart at the last tick (after a trade, so the chart shows it)."""
        if self.last_time_ms != -(1 << 62):
            self.equity = self._equity()
            self._sample(self.last_time_ms)

    @cython.boundscheck(True)
    def run(self, const int[:] sym, const long long[:] time_ms, const double[:] bid, const double[:] ask,
            const double[:] volume, Py_ssize_t start, Py_ssize_t end, bint skip_stops=False):
        cdef Py_ssize_t n = time_ms.shape[0]
        if sym.shape[0] != n or bid.shape[0] != n or ask.shape[0] != n or volume.shape[0] != n:
            raise ValueError("tick arrays differ in length")
        if not 0 <= start <= end <= n:
            raise ValueError(f"range {start}..{end} is outside 0..{n}")
        return self._run(sym, time_ms, bid, ask, volume, start, end, skip_stops)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef tuple _run(self, const int[:] sym, const long long[:] time_ms, const double[:] bid, const double[:] ask,
                    const double[:] volume, Py_ssize_t start, Py_ssize_t end, bint skip_stops):
        cdef Py_ssize_t i
        cdef int s, r, nights
        cdef long long t
        cdef double b, a
        cdef FeatureEngine fe
        cdef DecisionEngine engine = self.engine
        for i in range(start, end):
            s = sym[i]
            if s < 0 or s >= engine.n_syms:
                # Checked here, tick by tick, rather than over the whole range on every call: run() is called
                # again after every trade.
                raise ValueError(f"tick {i}: unknown symbol index {s}")
            t = time_ms[i]
            b = bid[i]
            a = ask[i]
            if t >= self.next_rollover_ms:
                nights = 0
                while t >= self.next_rollover_ms:
                    if self.next_rollover_ms != -(1 << 62):
                        # Wednesday's rollover carries the weekend: three nights.
                        dst_year_for(&self.ny_dst, self.next_rollover_ms)
                        nights += 3 if weekday_from_days(floor_div(
                            self.next_rollover_ms + new_york_offset_ms(&self.ny_dst, self.next_rollover_ms),
                            MS_PER_DAY)) == 2 else 1
                    self.next_rollover_ms = self._next_rollover(
                        t if self.next_rollover_ms == -(1 << 62) else self.next_rollover_ms)
                if nights and self.charge_swaps and self.n_pos > 0:
                    self.rollover_nights = nights
                    return (i, RUN_ROLLOVER)
            if not (i == start and skip_stops) and self.n_pos > 0 and self._reaches_stop(s, b, a):
                # The day rolls before the broker closes anything on this tick (swaps due at the rollover
                # were charged above, on the day they fell in).
                self._roll_day(t)
                return (i, RUN_STOP)
            fe = <FeatureEngine>engine.engines[s]
            r = fe._tick(t, b, a, volume[i])
            if r < 0:
                return (i, RUN_REFUSED)
            self.bids[s] = b
            self.asks[s] = a
            self.quoted[s] = True
            self.last_time_ms = t
            self.ticks += 1
            if self.n_pos > 0:
                self.equity = self._equity()
            self._account(t)
            engine._after_tick(s, fe, r, t, b, a, self.balance, self.equity, self.margin)
            if engine.dec.action != ACT_HOLD:
                return (i, RUN_COMMAND)
            self.refusal_count[engine.dec.reason] += 1
        return (end, RUN_END)
