# A new entry: when the engine holds nothing on a symbol, whether its signal may open a position (trading
# state, warm-up, direction, score, confidence - a higher one in high volatility -, consensus, spread,
# volatility, the H1 trend, session, cooldown, number of positions), then its size (sizing.pxi's risk
# arithmetic) cut to every cap, and the OPEN. An add goes through the same caps (`capped_volume`, adds.pxi).
#
# Functions of the DecisionEngine (decision.pxi), which keeps a one-line method calling each: Cython allows no
# `include` inside a class body, so a part of the class lives in its own file this way.

cdef enum:
    SESSION_ASIA = 1
    SESSION_LONDON = 2
    SESSION_NEWYORK = 4


cdef inline int _consensus_bit(int c) noexcept nogil:
    return 1 << c


cdef inline void decide_entry(DecisionEngine self, int sym, FeatureEngine fe, long long t) noexcept:
    cdef SymbolSpec* s = &self.syms[sym].spec
    cdef EntryParams* e = &self.entry
    cdef const double* f = fe.feat
    cdef const Signal* sig = &fe.signal
    cdef int side = sig.direction, i, opens = 0
    cdef bint high_vol
    cdef double spread_points, atr_pct, min_conf
    if self.acct.state != STATE_ACTIVE:
        self._hold(self.acct.state_reason if self.acct.state_reason != R_NONE else R_STATE_REDUCING)
        return
    if not s.enabled:
        self._hold(R_TRADE_DISABLED)
        return
    if e.require_warm:
        for i in range(N_FEATURES):
            if not fe.warm[i]:
                self._hold(R_NOT_WARM)
                return
    if side == DIR_HOLD:
        self._hold(R_DIRECTION_HOLD)
        return
    if sig.score < e.min_score:
        self._hold(R_SCORE_LOW)
        return
    high_vol = f[2 * TF_BLOCK_LEN + TFO_ATR_RATIO_14_50] > e.high_vol_atr_ratio
    min_conf = e.min_confidence_high_vol if high_vol else e.min_confidence
    if sig.confidence < min_conf:
        self._hold(R_CONFIDENCE_LOW)
        return
    if not (e.consensus_mask & _consensus_bit(sig.consensus)):
        self._hold(R_CONSENSUS_WEAK)
        return
    spread_points = (s.ask - s.bid) / s.point
    if spread_points > s.max_spread_points:
        self._hold(R_SPREAD_WIDE)
        return
    if fe.warm[F_SPREAD_RATIO_1000] and f[F_SPREAD_RATIO_1000] > e.max_spread_typical_ratio:
        self._hold(R_SPREAD_ABNORMAL)
        return
    if s.atr <= 0.0:
        self._hold(R_NOT_WARM)
        return
    atr_pct = 100.0 * s.atr / s.bid
    if atr_pct > e.max_atr_pct:
        self._hold(R_VOLATILITY_GATE)
        return
    if e.require_h1_ema200 and f[3 * TF_BLOCK_LEN + TFO_EMA_200_DIST] * side <= 0.0:
        self._hold(R_TREND_MISALIGNED)
        return
    if e.session_mask and not (((e.session_mask & SESSION_ASIA) and f[F_SESSION_ASIA] > 0.5)
                               or ((e.session_mask & SESSION_LONDON) and f[F_SESSION_LONDON] > 0.5)
                               or ((e.session_mask & SESSION_NEWYORK) and f[F_SESSION_NEWYORK] > 0.5)):
        self._hold(R_SESSION_CLOSED)
        return
    if t < s.cooldown_until_ms:
        self._hold(R_COOLDOWN)
        return
    for i in range(self.n_fl):
        if self.fl[i].action == ACT_OPEN or self.fl[i].action == ACT_ADD:
            opens += 1
    if self.n_pos + opens >= self.sizing.max_positions:
        self._hold(R_MAX_POSITIONS)
        return
    self._size_and_open(sym, fe, side, high_vol)


cdef inline void size_and_open(DecisionEngine self, int sym, FeatureEngine fe, int side, bint high_vol) noexcept:
    cdef SymState* ss = &self.syms[sym]
    cdef SymbolSpec* s = &ss.spec
    cdef SizingParams* z = &self.sizing
    cdef const Signal* sig = &fe.signal
    cdef double equity = self.acct.equity, price = s.ask if side > 0 else s.bid
    cdef double min_dist = min_stop_distance(s, self.exits.stop_buffer_points)
    cdef double sl_dist = self.exits.sl_atr * s.atr, tp_dist = self.exits.tp_atr * s.atr
    cdef double quality, risk_frac, risk_money, sizing_dist, cvar, vpp = value_per_price(s), vol
    cdef double per_lot_worst, slip = self.acct.p.slippage_frac
    cdef int binding = R_NONE
    if sl_dist < min_dist:
        sl_dist = min_dist
    if tp_dist < min_dist:
        tp_dist = min_dist
    cdef double sl = round_price(s, price - side * sl_dist), tp = round_price(s, price + side * tp_dist)
    sl_dist = fabs(price - sl)
    quality = signal_quality(sig.score, sig.confidence, self.entry.min_score, self.entry.min_confidence,
                             z.quality_min, z.quality_max)
    risk_frac = z.base_max_frac * quality
    if risk_frac < z.base_min_frac:
        risk_frac = z.base_min_frac
    if high_vol:
        risk_frac *= z.high_vol_factor
    sizing_dist = sl_dist
    if z.full:
        risk_frac *= performance_multiplier(&self.acct)
        risk_frac *= self._diversification(sym, side)
        risk_frac *= z.trend_factor if fe.feat[3 * TF_BLOCK_LEN + TFO_ADX_14] >= 25.0 else z.range_factor
        risk_frac *= controller_multiplier(&self.acct)
        cvar = cvar_adverse(ss.closes, ss.closes_count, ss.closes_head, CVAR_CAP, z.cvar_window,
                            z.holding_bars, side, z.cvar_level, self.scratch)
        if cvar > sizing_dist:
            sizing_dist = cvar
    risk_money = equity * risk_frac
    vol = self._capped_volume(sym, price, risk_money / (sizing_dist * vpp), sl_dist, 0.0, 0.0, &binding)
    if vol == -INFINITY:
        self._hold(R_UNPROTECTED_POSITION)
        return
    per_lot_worst = sl_dist * (1.0 + slip) * vpp
    vol = round_volume_down(s, vol) if vol > 0 else 0.0
    self.dec.cap_reason = binding
    if vol < s.volume_min:
        self._hold(binding if binding != R_NONE else R_BELOW_MIN_VOLUME)
        return
    self._emit(ACT_OPEN, sym, side, vol, price, sl, tp, 0, R_ENTRY_SIGNAL, vol * per_lot_worst)


cdef inline double diversification_factor(DecisionEngine self, int sym, int side) noexcept nogil:
    """1 for an uncorrelated book; less as the book already holds the same bet through correlated symbols.
    Orders in flight are bets already made: two charts deciding one after the other must not both get
    full size because the first one's fill has not reached the book yet."""
    cdef double load = 0.0, rho
    cdef int i
    for i in range(self.n_pos):
        if self.pos[i].sym == sym:
            continue
        rho = self.corr[sym][self.pos[i].sym] * side * self.pos[i].side
        if rho > 0.0:
            load += rho
    for i in range(self.n_fl):
        if self.fl[i].sym == sym or not (self.fl[i].action == ACT_OPEN or self.fl[i].action == ACT_ADD):
            continue
        rho = self.corr[sym][self.fl[i].sym] * side * self.fl[i].side
        if rho > 0.0:
            load += rho
    cdef double factor = 1.0 - 0.5 * load
    return factor if factor > self.sizing.diversification_floor else self.sizing.diversification_floor


cdef inline double capped_volume(DecisionEngine self, int sym, double price, double vol, double sl_dist,
                                 double group_volume, double group_risk, int* binding) noexcept nogil:
    """``vol`` cut to every ceiling, the same for an entry and an add, the last that bound noted in
    ``binding``: the symbol's maximum volume; the class's lots (for the whole position with its adds) and
    notional; concentration (the position's stop risk with its adds); margin exposure (orders in flight
    included); the FTMO headroom (over the weekend close, the gap allowance when it exceeds the stop).
    -INFINITY when the worst case is unknowable (an unprotected position without an ATR)."""
    cdef SymbolSpec* s = &self.syms[sym].spec
    cdef SizingParams* z = &self.sizing
    cdef double equity = self.acct.equity, vpp = value_per_price(s), cap, worst
    cdef double per_lot_stop = sl_dist * (1.0 + self.acct.p.slippage_frac) * vpp
    cdef double per_lot_gap = self._gap(s) * price * vpp
    if vol > s.volume_max:
        vol, binding[0] = s.volume_max, R_SYMBOL_MAX_VOLUME
    cap = z.class_max_lots[s.symbol_class] - group_volume
    if vol > cap:
        vol, binding[0] = cap, R_CLASS_MAX_LOTS
    cap = (z.class_max_notional_frac[s.symbol_class] * equity - self._class_notional(s.symbol_class)) / (
        price * vpp)
    if vol > cap:
        vol, binding[0] = cap, R_CLASS_NOTIONAL
    cap = (z.concentration_share * z.daily_budget_frac * equity - group_risk) / per_lot_stop
    if vol > cap:
        vol, binding[0] = cap, R_CONCENTRATION
    cap = (z.max_exposure_frac * equity - self.margin - self._in_flight_margin()) / margin_for(s, 1.0, price)
    if vol > cap:
        vol, binding[0] = cap, R_EXPOSURE
    worst = self._worst_case_loss()
    if worst == INFINITY:
        return -INFINITY
    cap = self._room(worst) / (per_lot_gap if per_lot_gap > per_lot_stop else per_lot_stop)
    if vol > cap:
        vol, binding[0] = cap, (R_GAP_HEADROOM if per_lot_gap > per_lot_stop else R_HEADROOM)
    return vol


cdef inline double class_notional(DecisionEngine self, int cls) noexcept nogil:
    cdef double total = 0.0
    cdef int i
    cdef const SymbolSpec* s
    for i in range(self.n_pos):
        s = &self.syms[self.pos[i].sym].spec
        if s.symbol_class == cls:
            total += notional(s, self.pos[i].volume, self.pos[i].open_price)
    for i in range(self.n_fl):
        s = &self.syms[self.fl[i].sym].spec
        if s.symbol_class == cls and (self.fl[i].action == ACT_OPEN or self.fl[i].action == ACT_ADD):
            total += notional(s, self.fl[i].volume, self.fl[i].price)
    return total


cdef inline double in_flight_margin(DecisionEngine self) noexcept nogil:
    """Margin the orders in flight will take: the account's reported margin does not hold them yet."""
    cdef double total = 0.0
    cdef int i
    for i in range(self.n_fl):
        if self.fl[i].action == ACT_OPEN or self.fl[i].action == ACT_ADD:
            total += margin_for(&self.syms[self.fl[i].sym].spec, self.fl[i].volume, self.fl[i].price)
    return total
