# Managing one of the engine's open positions, tick by tick: the time exit, the exit score, the partial
# take-profit, breakeven and the trailing stop, else an add (adds.pxi); and the tripped circuit breaker's
# flatten of the whole book. The arithmetic on one position (exit score, stop levels) is in manage.pxi; here
# is the decision, which needs the engine's book and emits its command.
#
# Functions of the DecisionEngine (decision.pxi), which keeps a one-line method calling each: Cython allows no
# `include` inside a class body, so a part of the class lives in its own file this way.

cdef inline bint manage_position(DecisionEngine self, int sym, FeatureEngine fe, Position* p, long long t) noexcept:
    """Decide for one of the engine's positions; True when a command was emitted (or a refusal set)."""
    cdef SymbolSpec* s = &self.syms[sym].spec
    cdef ExitParams* x = &self.exits
    cdef double pr = profit_r(s, p), price = exit_price(s, p.side), vol, new_sl
    cdef double min_dist = min_stop_distance(s, x.stop_buffer_points)
    if x.time_exit_ms > 0 and t - p.open_time_ms >= x.time_exit_ms and pr < x.time_exit_min_r:
        return self._emit(ACT_CLOSE, sym, p.side, p.volume, price, 0.0, 0.0, p.ticket, R_TIME_EXIT, 0.0)
    if (exit_score(x, p, fe.feat, fe.warm, &fe.signal, self.entry.min_score, self.entry.min_confidence)
            >= exit_threshold(x, (price - p.open_price) * p.side / p.open_price)):
        return self._emit(ACT_CLOSE, sym, p.side, p.volume, price, 0.0, 0.0, p.ticket, R_EXIT_SCORE, 0.0)
    if p.stage == STAGE_OPEN and x.partial_r > 0 and pr >= x.partial_r:
        vol = round_volume_down(s, p.volume * x.partial_fraction)
        if vol >= s.volume_min and p.volume - vol >= s.volume_min - 1e-12:
            return self._emit(ACT_CLOSE, sym, p.side, vol, price, 0.0, 0.0, p.ticket, R_PARTIAL_TP, 0.0)
    if stop_is_frozen(s, p):
        return False
    if x.breakeven_r > 0 and pr >= x.breakeven_r:
        new_sl = round_price(s, p.open_price + p.side * x.breakeven_offset_points * s.point)
        if (p.sl <= 0.0 or (new_sl - p.sl) * p.side > 0.5 * s.point) and (price - new_sl) * p.side >= min_dist:
            return self._emit(ACT_MODIFY, sym, p.side, 0.0, price, new_sl, p.tp, p.ticket, R_BREAKEVEN, 0.0)
    if p.stage != STAGE_OPEN and x.trail_atr > 0 and s.atr > 0:
        new_sl = round_price(s, price - p.side * x.trail_atr * s.atr)
        if (new_sl - p.sl) * p.side > s.point and (price - new_sl) * p.side >= min_dist:
            if self._emit(ACT_MODIFY, sym, p.side, 0.0, price, new_sl, p.tp, p.ticket, R_TRAILING, 0.0):
                p.stage = STAGE_TRAILING
            return True
    if p.group != p.ticket:
        return False   # an add is never added to: only its group's original position is
    return self._add(sym, fe, p)


cdef inline bint circuit_breaker_flatten(DecisionEngine self, int sym) noexcept nogil:
    """The tripped circuit breaker closes everything: CLOSE_ALL, again after a refusal, until the book is
    flat with no entry in flight. True while it is not done (the tick's decision is made)."""
    cdef int k
    if self.n_pos == 0:
        for k in range(self.n_fl):
            if self.fl[k].action == ACT_OPEN or self.fl[k].action == ACT_ADD:
                self._hold(R_CIRCUIT_BREAKER)   # an entry may still fill: wait for it, then close it
                return True
        self.acct.breaker_flatten_pending = False
        return False
    if not self._close_all_in_flight():
        self._emit(ACT_CLOSE_ALL, sym, 0, 0.0, 0.0, 0.0, 0.0, 0, R_CIRCUIT_BREAKER_FLATTEN, 0.0)
    else:
        self._hold(R_CIRCUIT_BREAKER)
    return True
