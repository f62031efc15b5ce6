# The unified decision engine of one account: for every tick of every symbol, one decision — HOLD, OPEN,
# ADD, CLOSE (full or partial), MODIFY or CLOSE_ALL — with the reason and the numbers behind it. Nothing
# else opens risk. The order of precedence on a tick: flatten when HALTED, flatten before the weekend, the
# news blackout, a command already in flight, managing the engine's positions, then a new entry.
#
# Here: the class with its state (parameters, symbols, the book, the commands in flight, the last decision),
# the book as the terminal reports it, the worst case and headroom, that order of precedence on each tick
# (`_decide`), the operator, surviving a restart and reading the state. The parts it decides with are files
# of their own, included after this one: entry.pxi (a new entry and its size), adds.pxi (DCA and scale-in,
# position groups), exits.pxi (managing a position, the circuit breaker's flatten). Cython allows no `include`
# inside a class body, so each part is module-level `cdef inline` functions taking the engine, and the class
# keeps a one-line method for each: every call site and the method table are as before, and the C compiler
# inlines each function into its method.

cdef struct EntryParams:
    double min_score
    double min_confidence
    double min_confidence_high_vol
    unsigned int consensus_mask        # bit i set: consensus i (CONSENSUS_NAMES order) is allowed
    double max_spread_points
    double max_spread_typical_ratio
    double max_atr_pct
    double high_vol_atr_ratio
    bint require_h1_ema200
    unsigned int session_mask          # 0 = any time
    long long cooldown_ms
    bint require_warm


cdef struct FundedParams:
    bint news_blackout
    long long news_before_ms
    long long news_after_ms
    bint flat_before_weekend
    long long weekend_flat_ms
    int friday_close_minute            # UTC minute of Friday's close


cdef struct SymState:
    SymbolSpec spec
    double closes[CVAR_CAP]            # M15 closes for the CVaR of adverse moves
    int closes_head
    long long closes_count


cdef struct Decision:
    int action
    int sym
    int side
    int reason
    int cap_reason                     # the last sizing cap that bound, R_NONE if none
    double volume
    double price
    double sl
    double tp
    long long ticket
    long long command_id
    double score
    double confidence
    double risk_money
    double worst_case_loss             # every position and order in flight stopped out, with slippage
    double headroom                    # equity - worst case - floor - buffer, after this command


ACTION_NAMES = ("HOLD", "OPEN", "ADD", "CLOSE", "MODIFY", "CLOSE_ALL")
STATE_NAMES = ("ACTIVE", "REDUCING", "HALTED")
STAGE_NAMES = ("OPEN", "PARTIAL_TP", "TRAILING")


cdef class DecisionEngine:
    """Every trading decision of one account, across all its symbols.

    Feed it positions (``sync_positions``) whenever the terminal reports them, and every tick
    (``on_tick``); read ``decision`` after each tick. Commands stay "in flight" and count against every
    limit until their result arrives and the book shows them (``on_result``, ``sync_positions``).
    """

    cdef Account acct
    cdef EntryParams entry
    cdef SizingParams sizing
    cdef ExitParams exits
    cdef AddParams adds
    cdef FundedParams funded
    cdef SymState syms[MAX_SYMBOLS]
    cdef int n_syms
    cdef list engines
    cdef readonly list symbols
    cdef double corr[MAX_SYMBOLS][MAX_SYMBOLS]
    cdef Position pos[MAX_POSITIONS]
    cdef int n_pos
    cdef InFlight fl[MAX_INFLIGHT]
    cdef int n_fl
    cdef long long next_id
    cdef readonly long long magic
    cdef double margin
    cdef Decision dec
    cdef double scratch[CVAR_CAP]
    cdef long long[:] news_time
    cdef unsigned int[:] news_mask
    cdef int n_news
    cdef readonly list closed_trades
    cdef dict entry_features
    cdef double unprotected_stop_atr
    cdef double gap_frac[N_CLASSES]      # gap allowance over the weekend close, of price, per symbol class
    cdef long long gap_horizon_ms
    cdef bint over_close                 # now within gap_horizon_ms of the weekend close, or in the weekend
    cdef object pending_state
    cdef object lifecycle_pending
    # The latest close as the book saw it (its floating profit), until the broker's deals give the realized
    # money: the ticket, its slot in the performance window, the losing streak before it, its risk in money.
    cdef long long last_close_ticket
    cdef int last_close_slot
    cdef int last_close_streak
    cdef double last_close_risk

    def __init__(self, dict params, long long magic, long long first_command_id=1):
        """``params``: the flat engine parameters (``mt5bridge.config.engine_params``)."""
        self._set_params(params)
        self.magic = magic
        self.next_id = first_command_id
        self.n_syms = 0
        self.engines = []
        self.symbols = []
        self.n_pos = 0
        self.n_fl = 0
        self.margin = 0.0
        self.n_news = 0
        self.closed_trades = []
        self.entry_features = {}
        self.pending_state = None
        self.lifecycle_pending = None
        self.over_close = False
        self._clear_decision(0)

    def _set_params(self, dict p):
        cdef GuardParams g
        cdef int i
        cdef EntryParams* e = &self.entry
        cdef SizingParams* s = &self.sizing
        cdef ExitParams* x = &self.exits
        cdef AddParams* a = &self.adds
        cdef FundedParams* f = &self.funded
        g.initial_balance = p["initial_balance"]
        g.daily_loss_frac = p["daily_loss_frac"]
        g.max_loss_frac = p["max_loss_frac"]
        g.max_loss_trailing = p["max_loss_trailing"]
        g.target_frac = p["target_frac"]
        g.min_trading_days = p["min_trading_days"]
        g.best_day_max_share = p["best_day_max_share"]
        g.stop_at_target = p["stop_at_target"]
        g.buffer_frac = p["buffer_frac"]
        g.slippage_frac = p["slippage_frac"]
        g.reduce_share = p["reduce_share"]
        g.halt_share = p["halt_share"]
        g.internal_daily_frac = p["internal_daily_frac"]
        g.internal_weekly_frac = p["internal_weekly_frac"]
        g.losing_streak = p["losing_streak"]
        g.streak_factor = p["streak_factor"]
        g.recovery_frac = p["recovery_frac"]
        g.recovery_factor = p["recovery_factor"]
        g.breaker_frac = p["breaker_frac"]
        g.breaker_ms = p["breaker_ms"]
        g.breaker_flatten = p["breaker_flatten"]
        g.perf_window = p["perf_window"]
        g.perf_min = p["perf_min"]
        g.perf_max = p["perf_max"]
        account_init(&self.acct, g)
        self.unprotected_stop_atr = p["unprotected_stop_atr"]
        for i in range(N_CLASSES):
            self.gap_frac[i] = p["gap_frac"][i]
        self.gap_horizon_ms = p["gap_horizon_ms"]
        e.min_score = p["min_score"]
        e.min_confidence = p["min_confidence"]
        e.min_confidence_high_vol = p["min_confidence_high_vol"]
        e.consensus_mask = p["consensus_mask"]
        e.max_spread_points = p["max_spread_points"]
        e.max_spread_typical_ratio = p["max_spread_typical_ratio"]
        e.max_atr_pct = p["max_atr_pct"]
        e.high_vol_atr_ratio = p["high_vol_atr_ratio"]
        e.require_h1_ema200 = p["require_h1_ema200"]
        e.session_mask = p["session_mask"]
        e.cooldown_ms = p["cooldown_ms"]
        e.require_warm = p["require_warm"]
        s.full = p["sizing_full"]
        s.base_min_frac = p["base_risk_min_frac"]
        s.base_max_frac = p["base_risk_max_frac"]
        s.quality_min = p["quality_min"]
        s.quality_max = p["quality_max"]
        s.high_vol_factor = p["high_vol_factor"]
        s.trend_factor = p["trend_regime_factor"]
        s.range_factor = p["range_regime_factor"]
        s.cvar_level = p["cvar_level"]
        s.cvar_window = min(<int>p["cvar_window_bars"], CVAR_CAP)
        s.holding_bars = p["holding_bars"]
        s.max_positions = p["max_positions"]
        s.max_adds = p["max_adds"]
        s.max_exposure_frac = p["max_exposure_frac"]
        s.concentration_share = p["concentration_share"]
        s.daily_budget_frac = p["daily_risk_budget_frac"]
        for i in range(N_CLASSES):
            s.class_max_lots[i] = p["class_max_lots"][i]
            s.class_max_notional_frac[i] = p["class_max_notional_frac"][i]
        s.diversification_floor = p["diversification_floor"]
        x.sl_atr = p["sl_atr"]
        x.tp_atr = p["tp_atr"]
        x.breakeven_r = p["breakeven_r"]
        x.breakeven_offset_points = p["breakeven_offset_points"]
        x.partial_r = p["partial_r"]
        x.partial_fraction = p["partial_fraction"]
        x.trail_atr = p["trail_atr"]
        x.time_exit_ms = p["time_exit_ms"]
        x.time_exit_min_r = p["time_exit_min_r"]
        x.threshold_profit = p["exit_threshold_profit"]
        x.threshold_flat = p["exit_threshold_flat"]
        x.threshold_loss = p["exit_threshold_loss"]
        x.band_frac = p["exit_band_frac"]
        x.w_quality_drop = p["weight_quality_drop"]
        x.w_direction_reversal = p["weight_direction_reversal"]
        x.w_trend_reversal = p["weight_trend_reversal"]
        x.w_volume_divergence = p["weight_volume_divergence"]
        x.w_key_level = p["weight_key_level"]
        x.stop_buffer_points = p["stop_buffer_points"]
        a.dca_enabled = p["dca_enabled"]
        a.dca_loss_frac = p["dca_loss_frac"]
        a.dca_probability = p["dca_probability"]
        a.dca_min = p["dca_min"]
        a.dca_max = p["dca_max"]
        a.dca_max_adds = p["dca_max_adds"]
        a.scale_enabled = p["scale_enabled"]
        a.scale_profit_frac = p["scale_profit_frac"]
        a.scale_min_score = p["scale_min_score"]
        a.scale_min = p["scale_min"]
        a.scale_max = p["scale_max"]
        a.scale_max_adds = p["scale_max_adds"]
        f.news_blackout = p["news_blackout"]
        f.news_before_ms = p["news_before_ms"]
        f.news_after_ms = p["news_after_ms"]
        f.flat_before_weekend = p["flat_before_weekend"]
        f.weekend_flat_ms = p["weekend_flat_ms"]
        f.friday_close_minute = p["friday_close_minute"]

    # ---- set-up -----------------------------------------------------------------------------------------

    def add_symbol(self, str name, dict spec, FeatureEngine engine, int symbol_class=0,
                   unsigned int currencies=0, bint enabled=True, double max_spread_points=0.0):
        """Register a chart's symbol with its specification; returns its index."""
        if name in self.symbols:
            raise ValueError(f"symbol {name} is already registered")
        if self.n_syms >= MAX_SYMBOLS:
            raise ValueError(f"at most {MAX_SYMBOLS} symbols per account")
        if not 0 <= symbol_class < N_CLASSES:
            raise ValueError(f"symbol class {symbol_class} is not one of 0..{N_CLASSES - 1}")
        cdef SymState* ss = &self.syms[self.n_syms]
        cdef SymbolSpec* s = &ss.spec
        for key in ("point", "tick_size", "tick_value", "contract_size", "volume_min", "volume_step", "volume_max"):
            if not spec[key] > 0:
                raise ValueError(f"{name}: {key} must be > 0, got {spec[key]!r}")
        s.point = spec["point"]
        s.tick_size = spec["tick_size"]
        s.tick_value = spec["tick_value"]
        s.contract_size = spec["contract_size"]
        s.volume_min = spec["volume_min"]
        s.volume_step = spec["volume_step"]
        s.volume_max = spec["volume_max"]
        s.digits = spec["digits"]
        s.stops_level = spec.get("stops_level", 0)
        s.freeze_level = spec.get("freeze_level", 0)
        s.margin_per_lot = spec.get("margin_per_lot", 0.0)
        s.symbol_class = symbol_class
        s.currencies = currencies
        s.enabled = enabled
        s.max_spread_points = max_spread_points if max_spread_points > 0 else self.entry.max_spread_points
        s.have_quote = False
        s.bid = s.ask = NAN
        s.atr = 0.0
        s.cooldown_until_ms = -(1LL << 62)
        ss.closes_head = 0
        ss.closes_count = 0
        cdef int i
        for i in range(MAX_SYMBOLS):
            self.corr[self.n_syms][i] = 0.0
            self.corr[i][self.n_syms] = 0.0
        self.engines.append(engine)
        self.symbols.append(name)
        self.n_syms += 1
        if self.pending_state:
            self._apply_pending()
        return self.n_syms - 1

    def feature_engine(self, int sym):
        """The feature engine of a registered symbol (for its warm-up from history bars)."""
        if not 0 <= sym < self.n_syms:
            raise ValueError(f"unknown symbol index {sym}")
        return self.engines[sym]

    def adverse_move_cvar(self, int sym, int side):
        """The CVaR of adverse moves the full sizer uses now as its least stop distance (price units)."""
        if not 0 <= sym < self.n_syms:
            raise ValueError(f"unknown symbol index {sym}")
        cdef SymState* ss = &self.syms[sym]
        return cvar_adverse(ss.closes, ss.closes_count, ss.closes_head, CVAR_CAP, self.sizing.cvar_window,
                            self.sizing.holding_bars, 1 if side > 0 else -1, self.sizing.cvar_level, self.scratch)

    def set_correlation(self, int a, int b, double rho):
        if not (0 <= a < self.n_syms and 0 <= b < self.n_syms):
            raise ValueError("unknown symbol index")
        self.corr[a][b] = rho
        self.corr[b][a] = rho

    def set_news(self, times_ms, masks):
        """Releases (UTC ms, sorted) and the currencies each moves (bit masks) for the news blackout."""
        t = np.ascontiguousarray(times_ms, dtype=np.int64)
        m = np.ascontiguousarray(masks, dtype=np.uint32)
        if t.shape[0] != m.shape[0]:
            raise ValueError("news times and currency masks differ in length")
        if t.shape[0] > 1 and (np.diff(t) < 0).any():
            raise ValueError("news times must be sorted")
        self.news_time = t
        self.news_mask = m
        self.n_news = t.shape[0]

    # ---- the book ---------------------------------------------------------------------------------------

    cdef int _find_position(self, long long ticket) noexcept nogil:
        cdef int i
        for i in range(self.n_pos):
            if self.pos[i].ticket == ticket:
                return i
        return -1

    cdef void _remove_in_flight(self, int k) noexcept nogil:
        self.n_fl -= 1
        if k != self.n_fl:
            self.fl[k] = self.fl[self.n_fl]

    cdef int _adopt_in_flight(self, long long ticket, int sym, int side) noexcept nogil:
        """The OPEN or ADD in flight that a new position of ours fulfils, or -1: the one whose RESULT reported
        this ticket, else the first on (sym, side) whose RESULT has not named another ticket."""
        cdef int k
        for k in range(self.n_fl):
            if ((self.fl[k].action == ACT_OPEN or self.fl[k].action == ACT_ADD)
                    and self.fl[k].fill_ticket == ticket):
                return k
        for k in range(self.n_fl):
            if (self.fl[k].sym == sym and self.fl[k].side == side and self.fl[k].fill_ticket == 0
                    and (self.fl[k].action == ACT_OPEN or self.fl[k].action == ACT_ADD)):
                return k
        return -1

    # Position groups: adds.pxi.
    cdef int _group_on(self, int sym, int side, int skip) noexcept nogil:
        return group_on(self, sym, side, skip)

    cdef int _open_adds(self, long long group) noexcept nogil:
        return open_adds(self, group)

    @cython.boundscheck(True)
    def sync_positions(self, long long time_ms, const long long[:] ticket, const int[:] sym, const int[:] side,
                       const double[:] volume, const double[:] open_price, const double[:] sl, const double[:] tp,
                       const double[:] profit, const long long[:] open_time_ms, const long long[:] magic):
        """Replace the book with the terminal's positions (every position on the account).

        New positions are adopted (the engine's own by magic number, with the lifecycle of the command that
        opened them; anyone else's counted in every limit from now on); positions gone are recorded as
        closed trades (``closed_trades``) and start the symbol's cooldown.
        """
        cdef Py_ssize_t n = ticket.shape[0], j
        if n > MAX_POSITIONS:
            raise ValueError(f"{n} positions: at most {MAX_POSITIONS} are tracked")
        for j in range(n):
            if not 0 <= sym[j] < self.n_syms:
                raise ValueError(f"position {ticket[j]}: unknown symbol index {sym[j]}")
        cdef int i, k, old
        cdef Position* p
        for i in range(self.n_pos):
            self.pos[i].seen = False
        for j in range(n):
            old = self._find_position(ticket[j])
            if old < 0:
                if self.n_pos >= MAX_POSITIONS:
                    raise ValueError(f"more than {MAX_POSITIONS} positions")
                p = &self.pos[self.n_pos]
                self.n_pos += 1
                p.ticket = ticket[j]
                p.sym = sym[j]
                p.side = side[j]
                p.open_price = open_price[j]
                p.open_time_ms = open_time_ms[j]
                p.managed = magic[j] == self.magic
                p.stage = STAGE_OPEN
                p.mfe_r = 0.0
                p.mae_r = 0.0
                p.group = p.ticket
                p.adds = p.dca_adds = p.scale_adds = 0
                p.initial_volume = volume[j]
                p.entry_score = 0.0
                p.r_dist = fabs(open_price[j] - sl[j]) if sl[j] > 0 else 0.0
                k = self._adopt_in_flight(p.ticket, sym[j], side[j]) if p.managed else -1
                known = self.lifecycle_pending.pop(str(p.ticket), None) if self.lifecycle_pending else None
                if known is not None:
                    # A position the engine managed before a restart: its life goes on where it was.
                    p.stage, p.r_dist, p.mfe_r, p.mae_r = known["stage"], known["r_dist"], known["mfe_r"], known["mae_r"]
                    p.adds, p.entry_score = known["adds"], known["entry_score"]
                    p.initial_volume = known["initial_volume"]
                    p.group = known.get("group", p.ticket)
                    p.dca_adds, p.scale_adds = known.get("dca_adds", 0), known.get("scale_adds", 0)
                    k = -1
                if k >= 0:
                    p.entry_score = self.fl[k].score
                    if self.fl[k].sl > 0:
                        p.r_dist = fabs(self.fl[k].price - self.fl[k].sl)
                    if self.fl[k].action == ACT_ADD:
                        # On a hedging account an add's fill is a ticket of its own: it joins its parent's group.
                        p.group = self.fl[k].ticket
                    self._remove_in_flight(k)
                elif p.managed and known is None:
                    # An own position no command in flight explains (its command expired unsettled, or the state
                    # was lost). The engine opens one position per symbol and side and only adds to it, so
                    # beside one of ours on the same symbol and side it is an add: never a new group to add to.
                    old = self._group_on(p.sym, p.side, self.n_pos - 1)
                    if old >= 0:
                        p.group = self.pos[old].ticket
                        self.pos[old].adds = max(self.pos[old].adds, self._open_adds(p.group))
                account_on_position_opened(&self.acct, open_time_ms[j] if open_time_ms[j] > 0 else time_ms)
                # What the market looked like when it opened: with the outcome, a training example.
                self.entry_features[p.ticket] = (<FeatureEngine>self.engines[p.sym]).features
            else:
                p = &self.pos[old]
                if p.managed and volume[j] < p.volume - 1e-12 and p.stage == STAGE_OPEN:
                    p.stage = STAGE_PARTIAL_TP
            p.volume = volume[j]
            p.sl = sl[j]
            p.tp = tp[j]
            p.profit = profit[j]
            p.seen = True
        i = 0
        while i < self.n_pos:
            if self.pos[i].seen:
                i += 1
                continue
            self._record_close(&self.pos[i], time_ms)
            self.n_pos -= 1
            if i != self.n_pos:
                self.pos[i] = self.pos[self.n_pos]

    def update_profits(self, list tickets, list profits):
        """Set the floating profit (with swap and commission) of positions the book holds, everything else about
        them unchanged since the last ``sync_positions``: what that call would do with the same positions and
        new profits, without rebuilding the book. Returns False, changing nothing, when the book does not hold
        every ticket (then sync the positions)."""
        cdef Py_ssize_t j, n = len(tickets)
        if len(profits) != n:
            raise ValueError(f"{n} tickets but {len(profits)} profits")
        for j in range(n):
            if self._find_position(tickets[j]) < 0:
                return False
        for j in range(n):
            self.pos[self._find_position(tickets[j])].profit = profits[j]
        return True

    cdef void _record_close(self, Position* p, long long time_ms):
        cdef SymbolSpec* s = &self.syms[p.sym].spec
        cdef double risk = p.r_dist * value_per_price(s) * p.initial_volume
        cdef double r = p.profit / risk if risk > 0 else 0.0
        self.last_close_ticket = p.ticket
        self.last_close_slot = self.acct.perf_head
        self.last_close_streak = self.acct.streak
        self.last_close_risk = risk
        account_on_trade_closed(&self.acct, r, p.profit)
        s.cooldown_until_ms = time_ms + self.entry.cooldown_ms
        self.closed_trades.append({
            "ticket": p.ticket, "symbol": self.symbols[p.sym], "side": "BUY" if p.side > 0 else "SELL",
            "volume": p.volume, "open_price": p.open_price, "open_time_ms": p.open_time_ms,
            "close_time_ms": time_ms, "profit": p.profit, "r_multiple": r, "mfe_r": p.mfe_r, "mae_r": p.mae_r,
            "managed": bool(p.managed), "stage": STAGE_NAMES[p.stage], "adds": p.adds, "group": p.group,
            "risk_money": risk, "r_dist": p.r_dist,
            "features_at_entry": self.entry_features.pop(p.ticket, None),
            "features_at_exit": (<FeatureEngine>self.engines[p.sym]).features,
        })

    def on_result(self, long long command_id, bint filled, long long ticket=0):
        """The EA's RESULT for a command: a refusal frees its risk at once; a fill keeps it counted until the
        book shows the position. Returns False for an id not in flight (a duplicate or a late result)."""
        cdef int k
        for k in range(self.n_fl):
            if self.fl[k].id == command_id:
                if not filled:
                    if self.fl[k].action == ACT_ADD:
                        self._give_back_add(self.fl[k].ticket, self.fl[k].reason)
                    self._remove_in_flight(k)
                elif self.fl[k].action == ACT_OPEN or self.fl[k].action == ACT_ADD:
                    self.fl[k].filled = True
                    self.fl[k].fill_ticket = ticket
                else:
                    self._remove_in_flight(k)
                return True
        return False

    # A refused add given back to its group: adds.pxi.
    cdef void _give_back_add(self, long long group, int reason) noexcept nogil:
        give_back_add(self, group, reason)

    def expire(self, long long command_id):
        """Forget a command in flight after it has been reconciled against the book."""
        cdef int k
        for k in range(self.n_fl):
            if self.fl[k].id == command_id:
                self._remove_in_flight(k)
                return True
        return False

    # ---- the worst case ---------------------------------------------------------------------------------

    cdef inline double _gap(self, const SymbolSpec* s) noexcept nogil:
        return self.gap_frac[s.symbol_class] if self.over_close else 0.0

    cdef double _worst_case_loss(self) noexcept nogil:
        cdef double total = 0.0
        cdef int i
        cdef const Position* p
        cdef const InFlight* c
        cdef const SymbolSpec* s
        for i in range(self.n_pos):
            p = &self.pos[i]
            s = &self.syms[p.sym].spec
            if not s.have_quote:
                # No price yet for that symbol: assume the stop from the open price, the most the
                # position could be losing against its stop (or unknown without a stop).
                total += stop_loss_money(s, p.side, p.volume, p.open_price, p.sl, self.unprotected_stop_atr,
                                         self.acct.p.slippage_frac, self._gap(s))
            else:
                total += stop_loss_money(s, p.side, p.volume, exit_price(s, p.side), p.sl,
                                         self.unprotected_stop_atr, self.acct.p.slippage_frac, self._gap(s))
        for i in range(self.n_fl):
            c = &self.fl[i]
            if c.action == ACT_OPEN or c.action == ACT_ADD:
                s = &self.syms[c.sym].spec
                total += stop_loss_money(s, c.side, c.volume, c.price, c.sl, self.unprotected_stop_atr,
                                         self.acct.p.slippage_frac, self._gap(s))
        return total

    cdef inline double _floor(self) noexcept nogil:
        """The floor the worst case is held above: today's binding floor, and over the weekend close also the
        floor of the day the market reopens (the gap lands on that day)."""
        cdef double f = equity_floor(&self.acct), after
        if self.over_close:
            after = floor_after_close(&self.acct)
            if after > f:
                f = after
        return f

    cdef inline double _room(self, double worst) noexcept nogil:
        """Money that may still be put at risk: equity - worst case - binding floor - safety buffer."""
        return self.acct.equity - worst - self._floor() - safety_buffer(&self.acct)

    cdef bint _weekend_close_near(self, long long t) noexcept nogil:
        """From ``gap_horizon_ms`` before Friday's close until the market reopens: positions now may be held
        over the weekend gap. Never when everything is flattened before the close."""
        if self.funded.flat_before_weekend:
            return False
        cdef long long day = floor_div(t, MS_PER_DAY)
        # This week's Friday (for a Saturday or a Sunday, the one just past).
        cdef long long close_ms = ((day + 4 - weekday_from_days(day)) * MS_PER_DAY
                                   + self.funded.friday_close_minute * <long long>MS_PER_MINUTE)
        # FX reopens 48 hours after it closes; friday_close_utc may sit an hour early in winter, so an hour more.
        return close_ms - self.gap_horizon_ms <= t < close_ms + 49 * <long long>MS_PER_HOUR

    # ---- per tick -----------------------------------------------------------------------------------------

    def on_tick(self, int sym, long long time_ms, double bid, double ask, double volume, double balance,
                double equity, double margin=0.0):
        """One tick of one symbol with the account's balance, equity and margin; returns the action code."""
        self._on_tick(sym, time_ms, bid, ask, volume, balance, equity, margin)
        return self.dec.action

    def on_tick_outcome(self, int sym, long long time_ms, double bid, double ask, double volume, double balance,
                        double equity, double margin):
        """`on_tick` for the bridge's tick path: (action code, reason code index, status key) in one call, so
        an ordinary tick needs no other read. The status key (`status_key`) changes exactly when the trading
        state, its reason or the FTMO day does."""
        self._on_tick(sym, time_ms, bid, ask, volume, balance, equity, margin)
        return (self.dec.action, self.dec.reason, self._status_key())

    @cython.final   # called directly, not through the vtable, so the C compiler can inline it into both callers
    cdef int _on_tick(self, int sym, long long time_ms, double bid, double ask, double volume, double balance,
                      double equity, double margin) except -1:
        if not 0 <= sym < self.n_syms:
            raise ValueError(f"unknown symbol index {sym}")
        if not (equity == equity and balance == balance and fabs(equity) < INFINITY and fabs(balance) < INFINITY):
            raise ValueError(f"account state refused: balance {balance!r}, equity {equity!r}")
        cdef FeatureEngine fe = <FeatureEngine>self.engines[sym]
        cdef int r = fe._tick(time_ms, bid, ask, volume)
        if r < 0:
            raise fe._tick_error(r, time_ms, bid, ask, volume)
        self._after_tick(sym, fe, r, time_ms, bid, ask, balance, equity, margin)
        return 0

    @cython.final
    cdef inline long long _status_key(self) noexcept nogil:
        # Distinct for every (day, state, reason): the reason index is below 1024 and the state below 64.
        return (<long long> self.acct.day_key * 64 + self.acct.state) * 1024 + self.acct.state_reason

    cdef void _after_tick(self, int sym, FeatureEngine fe, int closed, long long t, double bid, double ask,
                          double balance, double equity, double margin) noexcept:
        cdef SymState* ss = &self.syms[sym]
        cdef SymbolSpec* s = &ss.spec
        cdef int i
        cdef double pr
        s.bid = bid
        s.ask = ask
        s.have_quote = True
        s.atr = fe.tf[2].atr14.value if atr_ready(&fe.tf[2].atr14) else 0.0
        if closed & 4:
            ss.closes[ss.closes_head] = ring_ago(&fe.tf[2].closes, 0)
            ss.closes_head = (ss.closes_head + 1) % CVAR_CAP
            ss.closes_count += 1
        account_on_tick(&self.acct, t, balance, equity)
        self.over_close = self._weekend_close_near(t)
        self.margin = margin
        for i in range(self.n_pos):
            if self.pos[i].sym == sym and self.pos[i].managed:
                pr = profit_r(s, &self.pos[i])
                if pr > self.pos[i].mfe_r:
                    self.pos[i].mfe_r = pr
                if pr < self.pos[i].mae_r:
                    self.pos[i].mae_r = pr
        self._decide(sym, fe, t)

    cdef void _clear_decision(self, int sym) noexcept nogil:
        self.dec.action = ACT_HOLD
        self.dec.sym = sym
        self.dec.side = 0
        self.dec.reason = R_NONE
        self.dec.cap_reason = R_NONE
        self.dec.volume = 0.0
        self.dec.price = 0.0
        self.dec.sl = 0.0
        self.dec.tp = 0.0
        self.dec.ticket = 0
        self.dec.command_id = 0
        self.dec.risk_money = 0.0

    cdef void _hold(self, int reason) noexcept nogil:
        self.dec.action = ACT_HOLD
        self.dec.reason = reason

    cdef bint _emit(self, int action, int sym, int side, double volume, double price, double sl, double tp,
                    long long ticket, int reason, double risk_money) noexcept nogil:
        """Turn the decision into a command: a fresh id, and in flight from now on."""
        if self.n_fl >= MAX_INFLIGHT:
            self._hold(R_COMMAND_IN_FLIGHT)
            return False
        cdef InFlight* c = &self.fl[self.n_fl]
        self.n_fl += 1
        c.id = self.next_id
        self.next_id += 1
        c.sym = sym
        c.action = action
        c.side = side
        c.volume = volume
        c.price = price
        c.sl = sl
        c.ticket = ticket
        c.fill_ticket = 0
        c.sent_ms = self.acct.now_ms
        c.filled = False
        c.score = self.dec.score
        c.reason = reason
        self.dec.action = action
        self.dec.sym = sym
        self.dec.side = side
        self.dec.volume = volume
        self.dec.price = price
        self.dec.sl = sl
        self.dec.tp = tp
        self.dec.ticket = ticket
        self.dec.reason = reason
        self.dec.command_id = c.id
        self.dec.risk_money = risk_money
        self.dec.worst_case_loss = self._worst_case_loss()
        self.dec.headroom = self._room(self.dec.worst_case_loss)
        return True

    cdef bint _in_flight_for(self, int sym) noexcept nogil:
        cdef int k
        for k in range(self.n_fl):
            if self.fl[k].sym == sym and not self.fl[k].filled:
                return True
            if self.fl[k].action == ACT_CLOSE_ALL:
                return True
        return False

    cdef bint _in_news_blackout(self, long long t, unsigned int currencies) noexcept:
        cdef int lo = 0, hi = self.n_news, mid
        if currencies == 0 or self.n_news == 0:
            return False
        # first release at or after t - after: any such release before t + before blacks out the tick
        while lo < hi:
            mid = (lo + hi) // 2
            if self.news_time[mid] < t - self.funded.news_after_ms:
                lo = mid + 1
            else:
                hi = mid
        while lo < self.n_news and self.news_time[lo] <= t + self.funded.news_before_ms:
            if self.news_mask[lo] & currencies:
                return True
            lo += 1
        return False

    cdef bint _before_weekend(self, long long t) noexcept nogil:
        cdef long long day = floor_div(t, MS_PER_DAY)
        if weekday_from_days(day) != 4:
            return False
        cdef long long close_ms = day * MS_PER_DAY + self.funded.friday_close_minute * <long long>MS_PER_MINUTE
        return close_ms - self.funded.weekend_flat_ms <= t

    cdef void _decide(self, int sym, FeatureEngine fe, long long t) noexcept:
        cdef int i
        cdef SymbolSpec* s = &self.syms[sym].spec
        self._clear_decision(sym)
        self.dec.score = fe.signal.score
        self.dec.confidence = fe.signal.confidence
        self.dec.worst_case_loss = self._worst_case_loss()
        self.dec.headroom = self._room(self.dec.worst_case_loss)
        if self.acct.state == STATE_HALTED or (self.funded.flat_before_weekend and self._before_weekend(t)):
            if self.n_pos > 0 and not self._close_all_in_flight():
                self._emit(ACT_CLOSE_ALL, sym, 0, 0.0, 0.0, 0.0, 0.0, 0,
                           R_FLATTEN if self.acct.state == STATE_HALTED else R_WEEKEND_FLAT, 0.0)
            else:
                self._hold(R_STATE_HALTED if self.acct.state == STATE_HALTED else R_WEEKEND)
            return
        if self.funded.news_blackout and self._in_news_blackout(t, s.currencies):
            self._hold(R_NEWS_BLACKOUT)
            return
        if self.acct.breaker_flatten_pending and self._breaker_flatten(sym):
            return
        if self._in_flight_for(sym):
            self._hold(R_COMMAND_IN_FLIGHT)
            return
        cdef bint holding = False
        for i in range(self.n_pos):
            if self.pos[i].sym == sym and self.pos[i].managed:
                holding = True
                if self._manage(sym, fe, &self.pos[i], t):
                    return
        if holding:
            self._hold(R_POSITION_OPEN)
            return
        self._entry(sym, fe, t)

    # The tripped circuit breaker's flatten: exits.pxi.
    cdef bint _breaker_flatten(self, int sym) noexcept nogil:
        return circuit_breaker_flatten(self, sym)

    cdef bint _close_all_in_flight(self) noexcept nogil:
        cdef int k
        for k in range(self.n_fl):
            if self.fl[k].action == ACT_CLOSE_ALL:
                return True
        return False

    # ---- managing a position: exits.pxi, adding to it: adds.pxi -------------------------------------------

    cdef bint _manage(self, int sym, FeatureEngine fe, Position* p, long long t) noexcept:
        return manage_position(self, sym, fe, p, t)

    cdef bint _add(self, int sym, FeatureEngine fe, Position* p) noexcept:
        return add_to_position(self, sym, fe, p)

    # ---- a new entry, and the caps an add meets too: entry.pxi --------------------------------------------

    cdef void _entry(self, int sym, FeatureEngine fe, long long t) noexcept:
        decide_entry(self, sym, fe, t)

    cdef double _diversification(self, int sym, int side) noexcept nogil:
        return diversification_factor(self, sym, side)

    cdef double _class_notional(self, int cls) noexcept nogil:
        return class_notional(self, cls)

    cdef double _in_flight_margin(self) noexcept nogil:
        return in_flight_margin(self)

    cdef double _capped_volume(self, int sym, double price, double vol, double sl_dist, double group_volume,
                               double group_risk, int* binding) noexcept nogil:
        return capped_volume(self, sym, price, vol, sl_dist, group_volume, group_risk, binding)

    cdef void _size_and_open(self, int sym, FeatureEngine fe, int side, bint high_vol) noexcept:
        size_and_open(self, sym, fe, side, high_vol)

    # ---- the operator -------------------------------------------------------------------------------------

    def halt(self, bint flatten=True):
        """Operator halt: open nothing until ``resume``; with ``flatten``, close everything too (HALTED),
        without it manage the open positions to their exits (REDUCING)."""
        self.acct.operator_halt = 2 if flatten else 1
        if self.acct.started:
            _evaluate_state(&self.acct)

    def resume(self):
        """Lift the operator's halt and the overall limit's latch; the next tick re-evaluates the state from
        the account as it is then (and halts again if a limit is still past its level)."""
        self.acct.operator_halt = 0
        self.acct.halted_for_good = False

    def set_spec(self, int sym, dict spec, bint enabled=True):
        """Replace a symbol's broker specification (a chart connected for a symbol first seen in a position)."""
        if not 0 <= sym < self.n_syms:
            raise ValueError(f"unknown symbol index {sym}")
        cdef SymbolSpec* s = &self.syms[sym].spec
        for key in ("point", "tick_size", "tick_value", "contract_size", "volume_min", "volume_step", "volume_max"):
            if not spec[key] > 0:
                raise ValueError(f"{self.symbols[sym]}: {key} must be > 0, got {spec[key]!r}")
        s.point = spec["point"]
        s.tick_size = spec["tick_size"]
        s.tick_value = spec["tick_value"]
        s.contract_size = spec["contract_size"]
        s.volume_min = spec["volume_min"]
        s.volume_step = spec["volume_step"]
        s.volume_max = spec["volume_max"]
        s.digits = spec["digits"]
        s.stops_level = spec.get("stops_level", 0)
        s.freeze_level = spec.get("freeze_level", 0)
        s.margin_per_lot = spec.get("margin_per_lot", 0.0)
        s.enabled = enabled

    @property
    def state_code(self):
        """(trading state, reason code index): cheap enough to read on every tick."""
        return (self.acct.state, self.acct.state_reason)

    @property
    def decision_code(self):
        """(action, reason code index, command id) of the last decision, without building the full dict."""
        return (self.dec.action, self.dec.reason, self.dec.command_id)

    @property
    def day_key(self):
        """The current FTMO (Prague) day, as days since 1970."""
        return self.acct.day_key

    @property
    def status_key(self):
        """One number that changes exactly when the trading state, its reason or the FTMO day changes."""
        return self._status_key()

    # ---- surviving a restart ------------------------------------------------------------------------------

    _ACCOUNT_FIELDS = ("started", "initial", "balance", "equity", "now_ms", "day_key", "week_key",
                       "day_start_balance", "week_start_balance", "day_peak_equity", "highest_eod_balance",
                       "equity_high", "best_day_profit", "state", "state_reason", "halted_today",
                       "halted_for_good", "operator_halt", "stopped_today", "stopped_this_week", "breaker_until_ms",
                       "breaker_flatten_pending", "streak", "recovery", "trading_days", "last_trading_day", "perf_n", "perf_head")

    def export_state(self):
        """Everything the FTMO limits, the trading state and the commands in flight depend on, as plain data
        (the journal stores it; ``restore_state`` puts it back after a restart)."""
        acct = {k: v for k, v in (<dict>self.acct).items() if k in self._ACCOUNT_FIELDS}
        acct["perf_r"] = [self.acct.perf_r[i] for i in range(self.acct.perf_n)]
        lifecycle = {
            str(self.pos[i].ticket): {
                "stage": self.pos[i].stage, "r_dist": self.pos[i].r_dist, "mfe_r": self.pos[i].mfe_r,
                "mae_r": self.pos[i].mae_r, "adds": self.pos[i].adds, "entry_score": self.pos[i].entry_score,
                "initial_volume": self.pos[i].initial_volume, "group": self.pos[i].group,
                "dca_adds": self.pos[i].dca_adds, "scale_adds": self.pos[i].scale_adds,
            } for i in range(self.n_pos) if self.pos[i].managed
        }
        return {
            "version": 1,
            "account": acct,
            "next_command_id": self.next_id,
            "in_flight": [{
                "id": self.fl[k].id, "symbol": self.symbols[self.fl[k].sym], "action": self.fl[k].action,
                "side": self.fl[k].side, "volume": self.fl[k].volume, "price": self.fl[k].price,
                "sl": self.fl[k].sl, "ticket": self.fl[k].ticket, "fill_ticket": self.fl[k].fill_ticket,
                "sent_ms": self.fl[k].sent_ms, "filled": bool(self.fl[k].filled), "score": self.fl[k].score,
                "reason": self.fl[k].reason,
            } for k in range(self.n_fl)],
            "cooldown_until_ms": {self.symbols[i]: self.syms[i].spec.cooldown_until_ms for i in range(self.n_syms)},
            "lifecycle": lifecycle,
        }

    def restore_state(self, dict state):
        """Put back what ``export_state`` gave; in-flight commands and cooldowns of symbols not registered
        yet are kept aside and applied when the symbol is added."""
        if state.get("version") != 1:
            raise ValueError(f"engine state version {state.get('version')!r} is not 1")
        acct = dict(state["account"])
        perf = acct.pop("perf_r", [])
        cdef dict current = <dict>self.acct
        current.update(acct)
        cdef GuardParams p = self.acct.p
        cdef DstYear dst = self.acct.dst
        self.acct = current
        self.acct.p = p
        self.acct.dst = dst
        for i, r in enumerate(perf[:PERF_CAP]):
            self.acct.perf_r[i] = r
        self.next_id = max(self.next_id, state["next_command_id"])
        self.pending_state = state
        self._apply_pending()

    def _apply_pending(self):
        state = self.pending_state
        if not state:
            return
        cdef int k, sym
        left = []
        for c in state["in_flight"]:
            if c["symbol"] not in self.symbols or self._has_in_flight(c["id"]):
                if c["symbol"] not in self.symbols:
                    left.append(c)
                continue
            if self.n_fl >= MAX_INFLIGHT:
                raise ValueError("more commands in flight than the engine can hold")
            sym = self.symbols.index(c["symbol"])
            k = self.n_fl
            self.n_fl += 1
            self.fl[k].id = c["id"]
            self.fl[k].sym = sym
            self.fl[k].action = c["action"]
            self.fl[k].side = c["side"]
            self.fl[k].volume = c["volume"]
            self.fl[k].price = c["price"]
            self.fl[k].sl = c["sl"]
            self.fl[k].ticket = c["ticket"]
            self.fl[k].fill_ticket = c.get("fill_ticket", 0)
            if "fill_ticket" not in c and c["filled"] and c["action"] in (ACT_OPEN, ACT_ADD):
                # Saved before fills had a field of their own: "ticket" then held the fill.
                self.fl[k].fill_ticket, self.fl[k].ticket = c["ticket"], 0
            self.fl[k].sent_ms = c["sent_ms"]
            self.fl[k].filled = c["filled"]
            self.fl[k].score = c["score"]
            self.fl[k].reason = c.get("reason", R_NONE)
        cooldowns = {}
        for name, until in state["cooldown_until_ms"].items():
            if name in self.symbols:
                self.syms[self.symbols.index(name)].spec.cooldown_until_ms = until
            else:
                cooldowns[name] = until
        self.lifecycle_pending = dict(state.get("lifecycle", {}))
        self.pending_state = dict(state, in_flight=left, cooldown_until_ms=cooldowns) if (left or cooldowns) else None

    cdef bint _has_in_flight(self, long long command_id):
        cdef int k
        for k in range(self.n_fl):
            if self.fl[k].id == command_id:
                return True
        return False

    # ---- reading the state --------------------------------------------------------------------------------

    @property
    def decision(self):
        """The last tick's decision as a dict (names, not codes)."""
        from mt5bridge.core.reasons import CODES, WORDS
        cdef Decision d = self.dec
        return {
            "action": ACTION_NAMES[d.action], "symbol": self.symbols[d.sym] if d.sym < self.n_syms else "",
            "side": "BUY" if d.side > 0 else ("SELL" if d.side < 0 else ""), "volume": d.volume,
            "price": d.price, "sl": d.sl, "tp": d.tp, "ticket": d.ticket, "command_id": d.command_id,
            "reason_code": CODES[d.reason], "reason": WORDS[CODES[d.reason]],
            "cap": CODES[d.cap_reason] if d.cap_reason != R_NONE else "",
            "score": d.score, "confidence": d.confidence, "risk_money": d.risk_money,
            "worst_case_loss": d.worst_case_loss, "headroom": d.headroom,
        }

    @property
    def account(self):
        """The FTMO picture: floors, headroom, state, objectives."""
        from mt5bridge.core.reasons import CODES
        cdef Account* a = &self.acct
        if a.started:
            self.over_close = self._weekend_close_near(a.now_ms)
        cdef double worst = self._worst_case_loss()
        return {
            "initial_balance": a.initial, "balance": a.balance, "equity": a.equity,
            "day_start_balance": a.day_start_balance, "daily_floor": daily_floor(a),
            "overall_floor": overall_floor(a), "equity_floor": equity_floor(a),
            "safety_buffer": safety_buffer(a), "worst_case_loss": worst, "headroom": self._room(worst),
            "daily_used_share": daily_used_share(a) if a.started else 0.0,
            "overall_used_share": overall_used_share(a) if a.started else 0.0,
            "state": STATE_NAMES[a.state], "state_reason": CODES[a.state_reason],
            "trading_days": a.trading_days, "target_reached": bool(target_reached(a)),
            "best_day_profit": best_day_profit(a),
            "best_day_share": best_day_profit(a) / (a.balance - a.initial) if a.balance > a.initial else 0.0,
            "over_weekend_close": bool(self.over_close), "floor_after_close": floor_after_close(a),
            "profit": a.balance - a.initial,
            "losing_streak": a.streak, "recovery_mode": bool(a.recovery),
            "risk_multiplier": controller_multiplier(a) * performance_multiplier(a),
            "circuit_breaker_until_ms": a.breaker_until_ms if a.breaker_until_ms > 0 else None,
            "circuit_breaker_flattening": bool(a.breaker_flatten_pending),
            "positions": self.n_pos, "in_flight": self.n_fl,
        }

    @property
    def positions(self):
        return [{
            "ticket": self.pos[i].ticket, "symbol": self.symbols[self.pos[i].sym],
            "side": "BUY" if self.pos[i].side > 0 else "SELL", "volume": self.pos[i].volume,
            "open_price": self.pos[i].open_price, "sl": self.pos[i].sl, "tp": self.pos[i].tp,
            "profit": self.pos[i].profit, "managed": bool(self.pos[i].managed), "stage": STAGE_NAMES[self.pos[i].stage],
            "r_dist": self.pos[i].r_dist, "mfe_r": self.pos[i].mfe_r, "mae_r": self.pos[i].mae_r,
            "adds": self.pos[i].adds, "dca_adds": self.pos[i].dca_adds, "scale_adds": self.pos[i].scale_adds,
            "group": self.pos[i].group,
        } for i in range(self.n_pos)]

    @property
    def in_flight(self):
        return [{
            "command_id": self.fl[k].id, "symbol": self.symbols[self.fl[k].sym],
            "action": ACTION_NAMES[self.fl[k].action], "side": self.fl[k].side, "volume": self.fl[k].volume,
            "price": self.fl[k].price, "sl": self.fl[k].sl, "ticket": self.fl[k].ticket,
            "fill_ticket": self.fl[k].fill_ticket, "sent_ms": self.fl[k].sent_ms, "filled": bool(self.fl[k].filled),
        } for k in range(self.n_fl)]

    @property
    def next_command_id(self):
        return self.next_id

    def reserve_command_ids(self, long long next_id):
        """Issue no command id below ``next_id`` from now on: one bridge serves several accounts, each with an
        engine of its own, and their ids come from the journal's one sequence."""
        if next_id > self.next_id:
            self.next_id = next_id

    def start_account(self, long long time_ms, double balance, double equity, double day_start_balance=0.0):
        """Start the account before its first tick from what the EA reports in HELLO. ``day_start_balance``
        (the balance minus the deals since the last Prague midnight; 0 = unknown) becomes the base of the daily
        loss limit, as FTMO measures it, instead of whatever balance the bridge happens to see first on a day
        it starts in the middle of. An account already started (a state restored from the journal) is left as
        it is: False."""
        if self.acct.started:
            return False
        account_on_tick(&self.acct, time_ms, balance, equity)
        if day_start_balance > 0.0:
            self.acct.day_start_balance = day_start_balance
            if day_start_balance > self.acct.highest_eod_balance:
                self.acct.highest_eod_balance = day_start_balance
            _evaluate_state(&self.acct)
        return True

    def settle_closed_trade(self, long long ticket, double realized):
        """The realized money of the latest closed trade, from the broker's deals (profit, swap and commission of
        every deal of the position), in place of the floating profit the book last saw: the losing streak and
        the performance window then count what the trade really made (a stop filled beyond its price, a partial
        close at a better one). Only the latest close is corrected: False for any other ticket."""
        if ticket != self.last_close_ticket or ticket == 0:
            return False
        self.acct.perf_r[self.last_close_slot] = realized / self.last_close_risk if self.last_close_risk > 0 else 0.0
        if realized < 0.0:
            self.acct.streak = self.last_close_streak + 1
        elif realized > 0.0:
            self.acct.streak = 0
        else:
            self.acct.streak = self.last_close_streak
        return True

    def count_closed_trade(self, double realized, double risk_money):
        """A trade of this account that opened and closed between two ticks, never in the book, settled from
        its deals: counted in the losing streak and the performance window like any close."""
        account_on_trade_closed(&self.acct, realized / risk_money if risk_money > 0 else 0.0, realized)
