# The account's book: symbol specifications, open positions (the engine's and anyone else's) and the
# commands in flight, and from them the worst case: what equity would be if every position and every
# unconfirmed order were stopped out at its stop loss, with a slippage allowance on each stop distance, and
# over the weekend close at the larger of that and a gap allowance.

cdef enum:
    MAX_SYMBOLS = 64
    MAX_POSITIONS = 256
    MAX_INFLIGHT = 64

cdef enum:
    ACT_HOLD = 0
    ACT_OPEN = 1
    ACT_ADD = 2
    ACT_CLOSE = 3
    ACT_MODIFY = 4
    ACT_CLOSE_ALL = 5

cdef enum:
    STAGE_OPEN = 0
    STAGE_PARTIAL_TP = 1
    STAGE_TRAILING = 2


cdef struct SymbolSpec:
    double point
    double tick_size
    double tick_value          # account currency per tick per lot
    double contract_size
    double volume_min
    double volume_step
    double volume_max
    int digits
    int stops_level            # points
    int freeze_level           # points
    double margin_per_lot      # account currency for one lot; 0 = unknown, then notional / 100
    int symbol_class
    unsigned int currencies    # bit mask of the currencies it moves with (news blackouts)
    bint enabled
    double max_spread_points
    bint have_quote
    double bid
    double ask
    double atr                 # M15 ATR(14): stop distances and unprotected positions
    long long cooldown_until_ms


cdef struct Position:
    long long ticket
    int sym
    int side                   # 1 buy, -1 sell
    double volume
    double open_price
    double sl
    double tp
    double profit              # floating, with swap and commission
    long long open_time_ms
    bint managed               # opened by this engine (its magic number)
    bint seen
    int stage
    double r_dist              # the initial stop distance: one R
    double mfe_r
    double mae_r
    long long group            # the ticket of the position it belongs to: its own, or for an add its parent's
    int adds                   # adds taken by this position (its group's original), DCA and scale-in
    int dca_adds
    int scale_adds
    double entry_score
    double initial_volume


cdef struct InFlight:
    long long id
    int sym
    int action
    int side
    double volume
    double price
    double sl
    long long ticket           # CLOSE/MODIFY target; for an ADD the position it adds to (its group)
    long long fill_ticket      # for OPEN/ADD, the position ticket its RESULT reported; 0 until then
    long long sent_ms
    bint filled                # RESULT reported a fill: kept until the position shows in the book
    double score
    int reason


cdef inline double value_per_price(const SymbolSpec* s) noexcept nogil:
    """Account currency per 1.0 of price per lot."""
    return s.tick_value / s.tick_size


cdef inline double exit_price(const SymbolSpec* s, int side) noexcept nogil:
    return s.bid if side > 0 else s.ask


cdef inline double stop_loss_money(const SymbolSpec* s, int side, double volume, double from_price, double sl,
                                   double unprotected_atr, double slippage_frac, double gap_frac) noexcept nogil:
    """Loss from ``from_price`` to the stop, slippage included; INFINITY when unknowable. With a gap allowance
    (a position held over the market close), the larger of that and the gap: a stop inside the gap fills at
    the reopening price."""
    cdef double dist, gap
    if sl > 0.0:
        dist = (from_price - sl) * side
        if dist < 0.0:
            dist = 0.0   # the stop is already through the price: it closes now, at about this price
    elif s.atr > 0.0 and unprotected_atr > 0.0:
        dist = unprotected_atr * s.atr
    else:
        return INFINITY
    dist *= 1.0 + slippage_frac
    gap = gap_frac * from_price
    if gap > dist:
        dist = gap
    return dist * value_per_price(s) * volume


cdef inline double notional(const SymbolSpec* s, double volume, double price) noexcept nogil:
    return volume * price * value_per_price(s)


cdef inline double margin_for(const SymbolSpec* s, double volume, double price) noexcept nogil:
    if s.margin_per_lot > 0.0:
        return s.margin_per_lot * volume
    return notional(s, volume, price) / 100.0
