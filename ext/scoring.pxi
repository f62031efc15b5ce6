# Market score and direction: what the decision engine reads from the features.
#
# Market score (0-100): each score term maps one feature to a 0..1 quality by a clipped linear ramp; a
# group's sub-score is the weighted mean of its terms x 100, and the market score the weighted mean of the
# group sub-scores. A term whose feature is not warm counts as quality 0, so a cold symbol scores low.
#
# Direction: four logistic sub-models (trend-following, momentum, mean-reversion, breakout) over the
# standardized features z = clip((x - center) / scale). Their probabilities of an up-move are averaged with
# the sub-model weights; BUY above `buy_above`, SELL below `sell_below`, else HOLD; confidence is the
# probability of the chosen side, max(p, 1 - p). Each sub-model also votes (BUY above 0.5 + vote_margin,
# SELL below 0.5 - vote_margin) and the votes grade the consensus behind the direction.

cdef enum:
    N_SUBMODELS = 4
    MAX_SCORE_TERMS = 128

SCORE_TERMS_CAPACITY = MAX_SCORE_TERMS
"""How many market-score terms a model may have: the size of the engine's term arrays."""

cdef enum:
    DIR_SELL = -1
    DIR_HOLD = 0
    DIR_BUY = 1

cdef enum:
    CONSENSUS_UNANIMOUS = 0
    CONSENSUS_STRONG = 1
    CONSENSUS_WEAK = 2
    CONSENSUS_SPLIT = 3


cdef struct Model:
    double center[N_FEATURES]
    double inv_scale[N_FEATURES]
    double clip
    # sub-model weights, kept sparse: most shipped weights are zero
    int n_weights[N_SUBMODELS]
    int weight_feature[N_SUBMODELS][N_FEATURES]
    double weight[N_SUBMODELS][N_FEATURES]
    double bias[N_SUBMODELS]
    double submodel_weight[N_SUBMODELS]
    double buy_above
    double sell_below
    double vote_margin
    int n_terms
    int term_feature[MAX_SCORE_TERMS]
    int term_group[MAX_SCORE_TERMS]
    bint term_abs[MAX_SCORE_TERMS]
    double term_offset[MAX_SCORE_TERMS]
    double term_lo[MAX_SCORE_TERMS]
    double term_hi[MAX_SCORE_TERMS]
    double term_weight[MAX_SCORE_TERMS]
    double group_weight[N_GROUPS]


cdef struct Signal:
    double score
    double group_score[N_GROUPS]
    double p_up
    double submodel_p[N_SUBMODELS]
    int direction
    double confidence
    int consensus


cdef inline double _standardized(const Model* m, const double* f, const unsigned char* warm, int i) noexcept nogil:
    if not warm[i]:
        return 0.0
    cdef double z = (f[i] - m.center[i]) * m.inv_scale[i]
    if z > m.clip:
        return m.clip
    if z < -m.clip:
        return -m.clip
    return z


cdef inline void _market_score(const Model* m, const double* f, const unsigned char* warm, Signal* s) noexcept nogil:
    cdef double num[N_GROUPS]
    cdef double den[N_GROUPS]
    cdef double x, q, total = 0.0, total_w = 0.0
    cdef int g, t, i
    for g in range(N_GROUPS):
        num[g] = 0.0
        den[g] = 0.0
    for t in range(m.n_terms):
        i = m.term_feature[t]
        g = m.term_group[t]
        den[g] += m.term_weight[t]
        if not warm[i]:
            continue
        x = fabs(f[i] - m.term_offset[t]) if m.term_abs[t] else f[i]
        q = (x - m.term_lo[t]) / (m.term_hi[t] - m.term_lo[t])
        if q < 0.0:
            q = 0.0
        elif q > 1.0:
            q = 1.0
        num[g] += m.term_weight[t] * q
    for g in range(N_GROUPS):
        s.group_score[g] = 100.0 * num[g] / den[g] if den[g] > 0.0 else 0.0
        if den[g] > 0.0:
            total += m.group_weight[g] * s.group_score[g]
            total_w += m.group_weight[g]
    s.score = total / total_w if total_w > 0.0 else 0.0


cdef inline int _vote(double p, double margin) noexcept nogil:
    if p >= 0.5 + margin:
        return DIR_BUY
    if p <= 0.5 - margin:
        return DIR_SELL
    return DIR_HOLD


cdef inline void _direction(const Model* m, const double* f, const unsigned char* warm, Signal* s) noexcept nogil:
    cdef double logit, p, wsum = 0.0, psum = 0.0
    cdef int k, j, vote, agree = 0, oppose = 0
    for k in range(N_SUBMODELS):
        logit = m.bias[k]
        for j in range(m.n_weights[k]):
            logit += m.weight[k][j] * _standardized(m, f, warm, m.weight_feature[k][j])
        p = 1.0 / (1.0 + exp(-logit))
        s.submodel_p[k] = p
        psum += m.submodel_weight[k] * p
        wsum += m.submodel_weight[k]
    s.p_up = psum / wsum if wsum > 0.0 else 0.5
    if s.p_up >= m.buy_above:
        s.direction = DIR_BUY
    elif s.p_up <= m.sell_below:
        s.direction = DIR_SELL
    else:
        s.direction = DIR_HOLD
    s.confidence = s.p_up if s.p_up >= 0.5 else 1.0 - s.p_up
    if s.direction == DIR_HOLD:
        s.consensus = CONSENSUS_SPLIT
        return
    for k in range(N_SUBMODELS):
        vote = _vote(s.submodel_p[k], m.vote_margin)
        if vote == s.direction:
            agree += 1
        elif vote == -s.direction:
            oppose += 1
    if agree == N_SUBMODELS:
        s.consensus = CONSENSUS_UNANIMOUS
    elif agree == N_SUBMODELS - 1 and oppose == 0:
        s.consensus = CONSENSUS_STRONG
    elif agree > oppose:
        s.consensus = CONSENSUS_WEAK
    else:
        s.consensus = CONSENSUS_SPLIT


cdef inline void signal_update(const Model* m, const double* f, const unsigned char* warm, Signal* s) noexcept nogil:
    _market_score(m, f, warm, s)
    _direction(m, f, warm, s)
