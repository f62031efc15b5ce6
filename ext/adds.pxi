# Adding to a position: DCA on a loss with a high recovery probability, scale-in on a win in a strong market,
# within the group's add limits and through every cap an entry meets (entry.pxi); and the position groups an
# add belongs to (an original position and its adds), as the book finds them and as a refused add gives back.
#
# Functions of the DecisionEngine (decision.pxi), which keeps a one-line method calling each: Cython allows no
# `include` inside a class body, so a part of the class lives in its own file this way.

cdef inline bint add_to_position(DecisionEngine self, int sym, FeatureEngine fe, Position* p) noexcept:
    """DCA or scale-in for one of the engine's original positions: within the group's add limits, and
    through every cap an entry meets (max positions, the class's lots for the whole group, notional,
    concentration of the group's risk, exposure, the FTMO headroom)."""
    cdef SymbolSpec* s = &self.syms[sym].spec
    cdef AddParams* a = &self.adds
    # Moves are measured as the configuration describes them: % of the entry price, in the position's favour.
    cdef double move = (exit_price(s, p.side) - p.open_price) * p.side / p.open_price
    cdef double p_side = fe.signal.p_up if p.side > 0 else 1.0 - fe.signal.p_up
    cdef double share, vol, price, sl_dist, group_volume = 0.0, group_risk = 0.0
    cdef int reason, binding = R_NONE, i, used
    cdef bint dca, scale
    if self.acct.state != STATE_ACTIVE or p.sl <= 0.0:
        return False
    dca = a.dca_enabled and move < -a.dca_loss_frac and p_side > a.dca_probability
    scale = (a.scale_enabled and move > a.scale_profit_frac and fe.signal.score > a.scale_min_score
             and fe.signal.direction == p.side)
    if not (dca or scale):
        return False
    if p.adds >= self.sizing.max_adds or (dca and p.dca_adds >= a.dca_max_adds) or (
            scale and p.scale_adds >= a.scale_max_adds):
        self._hold(R_ADDS_USED)
        return True
    if dca:
        share = a.dca_min + (a.dca_max - a.dca_min) * (p_side - a.dca_probability) / (1.0 - a.dca_probability)
        reason = R_DCA
    else:
        share = a.scale_min + (a.scale_max - a.scale_min) * (fe.signal.score - a.scale_min_score) / (
            100.0 - a.scale_min_score)
        reason = R_SCALE_IN
    price = s.ask if p.side > 0 else s.bid
    if (exit_price(s, p.side) - p.sl) * p.side <= min_stop_distance(s, self.exits.stop_buffer_points):
        return False   # the stop is about to go (or has gone): nothing to add to
    # On a hedging account the add is a position of its own.
    used = self.n_pos
    for i in range(self.n_fl):
        if self.fl[i].action == ACT_OPEN or self.fl[i].action == ACT_ADD:
            used += 1
    if used >= self.sizing.max_positions:
        self._hold(R_MAX_POSITIONS)
        return True
    # The group as it stands: the position, its adds, and an add of it in flight.
    for i in range(self.n_pos):
        if self.pos[i].group == p.ticket:
            group_volume += self.pos[i].volume
            group_risk += stop_loss_money(s, p.side, self.pos[i].volume, exit_price(s, p.side), self.pos[i].sl,
                                          0.0, self.acct.p.slippage_frac, 0.0)
    for i in range(self.n_fl):
        if self.fl[i].action == ACT_ADD and self.fl[i].ticket == p.ticket:
            group_volume += self.fl[i].volume
            group_risk += stop_loss_money(s, p.side, self.fl[i].volume, self.fl[i].price, self.fl[i].sl, 0.0,
                                          self.acct.p.slippage_frac, 0.0)
    sl_dist = (price - p.sl) * p.side
    vol = self._capped_volume(sym, price, p.initial_volume * share, sl_dist, group_volume, group_risk, &binding)
    if vol == -INFINITY:
        self._hold(R_UNPROTECTED_POSITION)
        return True
    vol = round_volume_down(s, vol) if vol > 0 else 0.0
    self.dec.cap_reason = binding
    if vol < s.volume_min:
        if binding == R_NONE:
            return False   # the share itself is below the minimum volume: nothing to add
        self._hold(R_DCA_HEADROOM if binding == R_HEADROOM else binding)
        return True
    if self._emit(ACT_ADD, sym, p.side, vol, price, p.sl, p.tp, p.ticket, reason,
                  stop_loss_money(s, p.side, vol, price, p.sl, 0.0, self.acct.p.slippage_frac, 0.0)):
        p.adds += 1
        if reason == R_DCA:
            p.dca_adds += 1
        else:
            p.scale_adds += 1
    return True


cdef inline void give_back_add(DecisionEngine self, long long group, int reason) noexcept nogil:
    """A definite refusal: nothing was added, so the group may try again."""
    cdef int i = self._find_position(group)
    if i < 0:
        return
    if self.pos[i].adds > 0:
        self.pos[i].adds -= 1
    if reason == R_DCA and self.pos[i].dca_adds > 0:
        self.pos[i].dca_adds -= 1
    elif reason == R_SCALE_IN and self.pos[i].scale_adds > 0:
        self.pos[i].scale_adds -= 1


cdef inline int group_on(DecisionEngine self, int sym, int side, int skip) noexcept nogil:
    """The oldest of the engine's own original positions on (sym, side) other than ``skip``, or -1."""
    cdef int i, found = -1
    for i in range(self.n_pos):
        if (i != skip and self.pos[i].managed and self.pos[i].sym == sym and self.pos[i].side == side
                and self.pos[i].group == self.pos[i].ticket
                and (found < 0 or self.pos[i].open_time_ms < self.pos[found].open_time_ms)):
            found = i
    return found


cdef inline int open_adds(DecisionEngine self, long long group) noexcept nogil:
    cdef int i, n = 0
    for i in range(self.n_pos):
        if self.pos[i].group == group and self.pos[i].ticket != group:
            n += 1
    return n
