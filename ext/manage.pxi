# Managing an open position: breakeven, the partial take-profit, the trailing stop, the time exit and the
# exit score; and adding to it (DCA on a loss with a high recovery probability, scale-in on a win in a
# strong market). Every stop the engine sets keeps the symbol's stops and freeze levels.

cdef struct ExitParams:
    double sl_atr
    double tp_atr
    double breakeven_r
    double breakeven_offset_points
    double partial_r
    double partial_fraction
    double trail_atr
    long long time_exit_ms
    double time_exit_min_r
    double threshold_profit
    double threshold_flat
    double threshold_loss
    double band_frac
    double w_quality_drop
    double w_direction_reversal
    double w_trend_reversal
    double w_volume_divergence
    double w_key_level
    double stop_buffer_points


cdef struct AddParams:
    bint dca_enabled
    double dca_loss_frac
    double dca_probability
    double dca_min
    double dca_max
    int dca_max_adds
    bint scale_enabled
    double scale_profit_frac
    double scale_min_score
    double scale_min
    double scale_max
    int scale_max_adds


cdef inline double min_stop_distance(const SymbolSpec* s, double buffer_points) noexcept nogil:
    """The closest a stop may sit to the price: the larger of the stops and freeze levels, plus a buffer."""
    cdef int level = s.stops_level if s.stops_level > s.freeze_level else s.freeze_level
    return (level + buffer_points) * s.point


cdef inline double round_price(const SymbolSpec* s, double price) noexcept nogil:
    cdef double scale = pow(10.0, s.digits)
    return round(price * scale) / scale


cdef inline bint stop_is_frozen(const SymbolSpec* s, const Position* p) noexcept nogil:
    # Inside the freeze level the broker refuses any change to the stop.
    if p.sl <= 0.0 or s.freeze_level <= 0:
        return False
    return fabs(exit_price(s, p.side) - p.sl) <= s.freeze_level * s.point


cdef inline double profit_r(const SymbolSpec* s, const Position* p) noexcept nogil:
    if p.r_dist <= 0.0:
        return 0.0
    return (exit_price(s, p.side) - p.open_price) * p.side / p.r_dist


cdef inline double exit_score(const ExitParams* x, const Position* p, const double* f, const unsigned char* warm,
                              const Signal* sig, double min_score, double min_conf) noexcept nogil:
    """Evidence that the trade's reason is gone: each sign adds its weight (0-100 with the defaults)."""
    cdef double score = 0.0
    if sig.score < min_score:
        score += x.w_quality_drop
    if sig.direction == -p.side and sig.confidence >= min_conf:
        score += x.w_direction_reversal
    if warm[3 * TF_BLOCK_LEN + TFO_EMA_20_50_GAP] and f[3 * TF_BLOCK_LEN + TFO_EMA_20_50_GAP] * p.side < 0.0:
        score += x.w_trend_reversal
    # Price still going our way on M15 while the volume behind the moves goes the other way.
    if (warm[2 * TF_BLOCK_LEN + TFO_SIGNED_VOLUME_10] and f[2 * TF_BLOCK_LEN + TFO_ROC_10] * p.side > 0.0
            and f[2 * TF_BLOCK_LEN + TFO_SIGNED_VOLUME_10] * p.side < -0.2):
        score += x.w_volume_divergence
    # Within half an ATR of the swing level the trade runs into (a high for a buy, a low for a sell).
    cdef int level = TFO_SWING_HIGH_ATR if p.side > 0 else TFO_SWING_LOW_ATR
    if warm[2 * TF_BLOCK_LEN + level] and 0.0 <= f[2 * TF_BLOCK_LEN + level] <= 0.5:
        score += x.w_key_level
    return score


cdef inline double exit_threshold(const ExitParams* x, double move) noexcept nogil:
    """A winning trade is let go more easily than a flat one; a losing one sits in between. ``move`` is the
    price's move from the entry in the position's favour, as a fraction of the entry price."""
    cdef double pl = move
    if pl > x.band_frac:
        return x.threshold_profit
    if pl < -x.band_frac:
        return x.threshold_loss
    return x.threshold_flat
