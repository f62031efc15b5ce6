# The compiled price-file reader: the data rows of a tick or bar file, already in memory, parsed in one pass in
# C into the arrays the replay uses.
#
# It holds no rule of its own beyond the file formats mt5bridge/market/readers.py reads, and it judges nothing:
# it accepts only the plain way of writing each field (ASCII, no exponent, dates and times in the usual
# layouts, '\n' or '\r\n' line ends, blank lines only at the end) and gives None for anything else, a bad
# value included. Then the Python reader reads the file and gives its answer, an error naming the file, the
# line and the reason. So it can only ever accept a subset of what the Python reader accepts, with the very
# same values; tests/test_marketread.py holds it to that on every sample and every malformed file.
#
# The caller reads the file (the compiled core does no I/O) and hands over the bytes after the header line.

import numpy as np

cimport numpy as cnp
from libc.string cimport memchr, memcmp

cnp.import_array()

cdef enum:
    # Below 2**53 a decimal mantissa is exact in a double, so mantissa / 10**k (k <= 22, exact too) is
    # correctly rounded by the one division: the same double as Python's float() gives for the text.
    MAX_FAST_DIGITS = 15
    MAX_FAST_EXP10 = 22
    MAX_FIELDS = 16
    # Integer epochs of at most 18 digits fit a signed 64-bit integer.
    MAX_EPOCH_DIGITS = 18

cdef double[23] POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]
cdef int[12] DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
cdef long long MS_PER_DAY = 86400000
# Below this an integer epoch is read as seconds (readers._EPOCH_SECONDS_LIMIT).
cdef long long EPOCH_SECONDS_LIMIT = 100000000000


cdef struct Field:
    const unsigned char *p
    Py_ssize_t n


cdef inline bint is_digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint digits_only(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not is_digit(p[i]):
            return False
    return True


cdef inline int two_digits(const unsigned char *p) noexcept nogil:
    return (p[0] - 48) * 10 + (p[1] - 48)


cdef inline long long days_from_civil(long long y, long long m, long long d) noexcept nogil:
    # H. Hinnant's days_from_civil, as readers._days_from_civil.
    cdef long long era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline bint date_ms(const unsigned char *p, Py_ssize_t n, long long *out) noexcept nogil:
    """'YYYY-MM-DD' or 'YYYY.MM.DD' (one separator for both) to the epoch ms of its midnight."""
    cdef int y, m, d, last
    if n != 10 or p[4] != p[7] or (p[4] != 45 and p[4] != 46):
        return False
    if not (digits_only(p, 4) and digits_only(p + 5, 2) and digits_only(p + 8, 2)):
        return False
    y = two_digits(p) * 100 + two_digits(p + 2)
    m = two_digits(p + 5)
    d = two_digits(p + 8)
    if m < 1 or m > 12:
        return False
    last = DAYS_IN_MONTH[m - 1]
    if m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        last += 1
    if d < 1 or d > last:
        return False
    out[0] = days_from_civil(y, m, d) * MS_PER_DAY
    return True


cdef inline bint clock_ms(const unsigned char *p, Py_ssize_t n, long long *out) noexcept nogil:
    """'HH:MM', 'HH:MM:SS' or 'HH:MM:SS.fff' to milliseconds since midnight; other forms are left to Python."""
    cdef int h, m, s = 0, ms = 0
    if n != 5 and n != 8 and n != 12:
        return False
    if p[2] != 58 or not (digits_only(p, 2) and digits_only(p + 3, 2)):
        return False
    h = two_digits(p)
    m = two_digits(p + 3)
    if n >= 8:
        if p[5] != 58 or not digits_only(p + 6, 2):
            return False
        s = two_digits(p + 6)
    if n == 12:
        if p[8] != 46 or not digits_only(p + 9, 3):
            return False
        ms = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
    if h > 23 or m > 59 or s > 59:
        return False
    out[0] = ((h * 60 + m) * 60 + s) * 1000 + ms
    return True


cdef struct DayMemo:
    # Consecutive rows nearly always share the date: compared, not parsed again.
    const unsigned char *text
    long long ms


cdef inline bint day_ms(const unsigned char *p, Py_ssize_t n, DayMemo *memo) noexcept nogil:
    if memo.text != NULL and n == 10 and memcmp(memo.text, p, 10) == 0:
        return True
    if not date_ms(p, n, &memo.ms):
        return False
    memo.text = p
    return True


cdef inline bint csv_time_ms(const unsigned char *p, Py_ssize_t n, DayMemo *memo, long long *out) noexcept nogil:
    """A CSV time: 'date time' or 'dateTtime[Z]', or an integer epoch in seconds or milliseconds."""
    cdef long long clock, value = 0
    cdef Py_ssize_t i
    if n >= 16 and (p[10] == 32 or p[10] == 84):
        if not day_ms(p, 10, memo):
            return False
        if not clock_ms(p + 11, n - 12 if p[n - 1] == 90 else n - 11, &clock):
            return False
        out[0] = memo.ms + clock
        return True
    if n == 0 or n > MAX_EPOCH_DIGITS or not digits_only(p, n):
        return False
    for i in range(n):
        value = value * 10 + (p[i] - 48)
    out[0] = value * 1000 if value < EPOCH_SECONDS_LIMIT else value
    return True


cdef inline bint number(const unsigned char *p, Py_ssize_t n, double *out, int *decimals) noexcept nogil:
    """Digits with at most one '.', at least one digit, exact in the fast path; anything else is left to Python."""
    cdef unsigned long long mantissa = 0
    cdef int significant = 0, frac = 0, digits = 0
    cdef bint dot = False
    cdef Py_ssize_t i
    cdef unsigned char c
    if n == 0:
        return False
    for i in range(n):
        c = p[i]
        if is_digit(c):
            digits += 1
            if dot:
                frac += 1
            if mantissa or c != 48:
                significant += 1
                if significant > MAX_FAST_DIGITS:
                    return False
            mantissa = mantissa * 10 + (c - 48)
        elif c == 46 and not dot:
            dot = True
        else:
            return False
    if digits == 0 or frac > MAX_FAST_EXP10:
        return False
    out[0] = <double>mantissa / POW10[frac]
    decimals[0] = frac
    return True


cdef inline Py_ssize_t split(const unsigned char *p, Py_ssize_t n, unsigned char sep, Field *fields,
                             int max_fields) noexcept nogil:
    """The fields of one line; -1 when there are more than max_fields."""
    cdef int count = 0
    cdef Py_ssize_t start = 0, i
    for i in range(n + 1):
        if i == n or p[i] == sep:
            if count == max_fields:
                return -1
            fields[count].p = p + start
            fields[count].n = i - start
            count += 1
            start = i + 1
    return count


cdef inline Field trimmed(Field f) noexcept nogil:
    """A CSV field without the spaces around it (Python's float() and strip() ignore them too)."""
    while f.n and f.p[0] == 32:
        f.p += 1
        f.n -= 1
    while f.n and f.p[f.n - 1] == 32:
        f.n -= 1
    return f


cdef class Lines:
    """The data lines of a buffer, one at a time; refuses what the Python reader would split differently."""

    cdef const unsigned char *p
    cdef const unsigned char *end
    cdef const unsigned char *line
    cdef Py_ssize_t length
    cdef bint blank_seen
    cdef bint bad

    cdef bint next(self) noexcept nogil:
        """Moves to the next data line; False at the end or on anything unusual (then .bad is set)."""
        cdef const unsigned char *nl
        cdef Py_ssize_t i, n
        cdef bint blank
        while self.p < self.end:
            nl = <const unsigned char *>memchr(self.p, 10, self.end - self.p)
            if nl == NULL:
                nl = self.end
            n = nl - self.p
            if n and self.p[n - 1] == 13:
                n -= 1
            self.line = self.p
            self.length = n
            self.p = nl + 1
            # Only the blank test here: a lone '\r' (a line end for Python) or a non-ASCII byte (text it must
            # decode) is in some field, and every field is parsed strictly, so such a row is refused there.
            blank = True
            for i in range(n):
                if self.line[i] != 32:
                    blank = False
                    break
            if blank:
                self.blank_seen = True  # allowed only at the end
                continue
            if self.blank_seen:
                self.bad = True
                return False
            return True
        return False


cdef Lines lines_of(const unsigned char[::1] data, Py_ssize_t start):
    cdef Lines lines = Lines.__new__(Lines)
    cdef Py_ssize_t n = data.shape[0]
    if start > n:
        start = n
    lines.p = &data[0] + start if n else NULL
    lines.end = &data[0] + n if n else NULL
    lines.blank_seen = False
    lines.bad = False
    return lines


cdef Py_ssize_t count_lines(const unsigned char[::1] data, Py_ssize_t start) noexcept nogil:
    cdef Py_ssize_t n = data.shape[0], count = 1
    cdef const unsigned char *p
    cdef const unsigned char *end
    if start >= n:
        return 1
    p = &data[0] + start
    end = &data[0] + n
    while True:
        p = <const unsigned char *>memchr(p, 10, end - p)
        if p == NULL:
            return count
        count += 1
        p += 1


cdef class TickColumns:
    cdef cnp.ndarray times, bid, ask, volume
    cdef cnp.int64_t *t_out
    cdef double *b_out
    cdef double *a_out
    cdef double *v_out

    def __cinit__(self, Py_ssize_t cap):
        self.times = np.empty(cap, np.int64)
        self.bid, self.ask, self.volume = (np.empty(cap, np.float64) for _ in range(3))
        self.t_out = <cnp.int64_t *>self.times.data
        self.b_out = <double *>self.bid.data
        self.a_out = <double *>self.ask.data
        self.v_out = <double *>self.volume.data

    def arrays(self, Py_ssize_t n):
        return _trimmed((self.times, self.bid, self.ask, self.volume), n)


cdef inline void put_tick(TickColumns out, Py_ssize_t n, long long t, double bid, double ask,
                          double v) noexcept nogil:
    # A plain function, not a method: no virtual call in the per-row loop. An empty or zero volume counts 1.
    out.t_out[n] = t
    out.b_out[n] = bid
    out.a_out[n] = ask
    out.v_out[n] = v if v > 0.0 else 1.0


def mt5_ticks(const unsigned char[::1] data, Py_ssize_t start):
    """The rows of an MT5 tick export after its header: (times_ms, bid, ask, volume) in the file's clock, or None.

    As readers._read_mt5_ticks: an empty BID or ASK carries the last known side forward; rows before both
    sides are known and rows changing neither side are skipped; an empty or zero volume is 1.
    """
    cdef Py_ssize_t cap = count_lines(data, start), n = 0
    cdef TickColumns out = TickColumns(cap)
    cdef Lines lines = lines_of(data, start)
    cdef Field f[MAX_FIELDS]
    cdef long long clock, t, prev_t = -(1LL << 62)
    cdef DayMemo memo = DayMemo(NULL, 0)
    cdef double bid = 0.0, ask = 0.0, b, a, v, last
    cdef int dec
    cdef bint ok = True
    with nogil:
        while lines.next():
            if split(lines.line, lines.length, 9, f, MAX_FIELDS) != 7:
                ok = False
                break
            if not day_ms(f[0].p, f[0].n, &memo):
                ok = False
                break
            if not clock_ms(f[1].p, f[1].n, &clock):
                ok = False
                break
            t = memo.ms + clock
            if t < prev_t:
                ok = False
                break
            prev_t = t
            if f[2].n:
                if not number(f[2].p, f[2].n, &b, &dec) or b <= 0.0:
                    ok = False
                    break
                bid = b
            if f[3].n:
                if not number(f[3].p, f[3].n, &a, &dec) or a <= 0.0:
                    ok = False
                    break
                ask = a
            if f[4].n and not number(f[4].p, f[4].n, &last, &dec):
                ok = False
                break
            v = 1.0
            if f[5].n and not number(f[5].p, f[5].n, &v, &dec):
                ok = False
                break
            if f[6].n and not digits_only(f[6].p, f[6].n):
                ok = False
                break
            if (f[2].n == 0 and f[3].n == 0) or bid == 0.0 or ask == 0.0:
                continue
            if bid > ask:
                ok = False
                break
            put_tick(out, n, t, bid, ask, v)
            n += 1
    if not ok or lines.bad or n == 0:
        return None
    return out.arrays(n)


def csv_ticks(const unsigned char[::1] data, Py_ssize_t start, int columns, int it, int ib, int ia, int iv):
    """The rows of a 'time,bid,ask[,volume]' CSV after its header (column indexes given; iv = -1 when there is
    no volume column): (times_ms, bid, ask, volume) in the file's clock, or None."""
    cdef Py_ssize_t cap = count_lines(data, start), n = 0
    cdef TickColumns out = TickColumns(cap)
    cdef Lines lines = lines_of(data, start)
    cdef Field f[MAX_FIELDS]
    cdef Field tf, vf, bf, af
    cdef long long t, prev_t = -(1LL << 62)
    cdef DayMemo memo = DayMemo(NULL, 0)
    cdef double b, a, v
    cdef int dec
    cdef bint ok = True
    if columns > MAX_FIELDS:
        return None
    with nogil:
        while lines.next():
            if split(lines.line, lines.length, 44, f, MAX_FIELDS) != columns:
                ok = False
                break
            tf = trimmed(f[it])
            if not csv_time_ms(tf.p, tf.n, &memo, &t) or t < prev_t:
                ok = False
                break
            prev_t = t
            bf = trimmed(f[ib])
            af = trimmed(f[ia])
            if not number(bf.p, bf.n, &b, &dec) or b <= 0.0:
                ok = False
                break
            if not number(af.p, af.n, &a, &dec) or a <= 0.0 or b > a:
                ok = False
                break
            v = 1.0
            if iv >= 0:
                vf = trimmed(f[iv])
                if vf.n and not number(vf.p, vf.n, &v, &dec):
                    ok = False
                    break
            put_tick(out, n, t, b, a, v)
            n += 1
    if not ok or lines.bad or n == 0:
        return None
    return out.arrays(n)


cdef inline bint bar_ok(double o, double h, double lo, double c, double volume, double spread) noexcept nogil:
    """readers._check_bar: positive prices, the high above and the low below everything, no negative counts."""
    if o <= 0.0 or h <= 0.0 or lo <= 0.0 or c <= 0.0:
        return False
    if h < lo or h < o or h < c or lo > o or lo > c:
        return False
    return volume >= 0.0 and spread >= 0.0


cdef class BarColumns:
    cdef cnp.ndarray times, open, high, low, close, volume, spread
    cdef cnp.int64_t *t_out
    cdef double *o_out
    cdef double *h_out
    cdef double *l_out
    cdef double *c_out
    cdef double *v_out
    cdef double *s_out

    def __cinit__(self, Py_ssize_t cap):
        self.times = np.empty(cap, np.int64)
        self.open, self.high, self.low, self.close, self.volume, self.spread = (
            np.empty(cap, np.float64) for _ in range(6))
        self.t_out = <cnp.int64_t *>self.times.data
        self.o_out = <double *>self.open.data
        self.h_out = <double *>self.high.data
        self.l_out = <double *>self.low.data
        self.c_out = <double *>self.close.data
        self.v_out = <double *>self.volume.data
        self.s_out = <double *>self.spread.data

    def arrays(self, Py_ssize_t n):
        return _trimmed((self.times, self.open, self.high, self.low, self.close, self.volume, self.spread), n)


cdef inline void put_bar(BarColumns out, Py_ssize_t n, long long t, double o, double h, double lo, double c,
                         double v, double sp) noexcept nogil:
    # A plain function, not a method: no virtual call in the per-row loop.
    out.t_out[n] = t
    out.o_out[n] = o
    out.h_out[n] = h
    out.l_out[n] = lo
    out.c_out[n] = c
    out.v_out[n] = v
    out.s_out[n] = sp


def mt5_bars(const unsigned char[::1] data, Py_ssize_t start):
    """The rows of an MT5 bar export after its header: (times_ms, open, high, low, close, tickvol, spread, the
    most decimals written in a price) in the file's clock, or None."""
    cdef Py_ssize_t cap = count_lines(data, start), n = 0
    cdef BarColumns out = BarColumns(cap)
    cdef Lines lines = lines_of(data, start)
    cdef Field f[MAX_FIELDS]
    cdef long long day, clock, t, prev_t = -(1LL << 62)
    cdef double o, h, lo, c, tv, rv, sp
    cdef int d0, d1, d2, d3, dec, digits = 0
    cdef bint ok = True
    with nogil:
        while lines.next():
            if split(lines.line, lines.length, 9, f, MAX_FIELDS) != 9:
                ok = False
                break
            if not (date_ms(f[0].p, f[0].n, &day) and clock_ms(f[1].p, f[1].n, &clock)):
                ok = False
                break
            t = day + clock
            if t <= prev_t:
                ok = False
                break
            prev_t = t
            if not (number(f[2].p, f[2].n, &o, &d0) and number(f[3].p, f[3].n, &h, &d1)
                    and number(f[4].p, f[4].n, &lo, &d2) and number(f[5].p, f[5].n, &c, &d3)
                    and number(f[6].p, f[6].n, &tv, &dec) and number(f[7].p, f[7].n, &rv, &dec)
                    and number(f[8].p, f[8].n, &sp, &dec) and bar_ok(o, h, lo, c, tv, sp)):
                ok = False
                break
            digits = max(digits, d0, d1, d2, d3)
            put_bar(out, n, t, o, h, lo, c, tv, sp)
            n += 1
    if not ok or lines.bad or n == 0:
        return None
    return out.arrays(n) + (digits,)


def csv_bars(const unsigned char[::1] data, Py_ssize_t start, int columns, int it, int io, int ih, int il, int ic,
             int iv, int isp):
    """The rows of a 'time,open,high,low,close,volume[,spread]' CSV after its header (isp = -1 when there is no
    spread column): as mt5_bars, the volume being the file's volume."""
    cdef Py_ssize_t cap = count_lines(data, start), n = 0
    cdef BarColumns out = BarColumns(cap)
    cdef Lines lines = lines_of(data, start)
    cdef Field f[MAX_FIELDS]
    cdef Field tf, sf
    cdef long long t, prev_t = -(1LL << 62)
    cdef DayMemo memo = DayMemo(NULL, 0)
    cdef double o, h, lo, c, v, sp
    cdef int d0, d1, d2, d3, dec, digits = 0
    cdef bint ok = True
    if columns > MAX_FIELDS:
        return None
    with nogil:
        while lines.next():
            if split(lines.line, lines.length, 44, f, MAX_FIELDS) != columns:
                ok = False
                break
            tf = trimmed(f[it])
            if not csv_time_ms(tf.p, tf.n, &memo, &t) or t <= prev_t:
                ok = False
                break
            prev_t = t
            sp = 0.0
            if isp >= 0:
                sf = trimmed(f[isp])
                if not number(sf.p, sf.n, &sp, &dec):
                    ok = False
                    break
            if not (number(trimmed(f[io]).p, trimmed(f[io]).n, &o, &d0)
                    and number(trimmed(f[ih]).p, trimmed(f[ih]).n, &h, &d1)
                    and number(trimmed(f[il]).p, trimmed(f[il]).n, &lo, &d2)
                    and number(trimmed(f[ic]).p, trimmed(f[ic]).n, &c, &d3)
                    and number(trimmed(f[iv]).p, trimmed(f[iv]).n, &v, &dec)
                    and bar_ok(o, h, lo, c, v, sp)):
                ok = False
                break
            digits = max(digits, d0, d1, d2, d3)
            put_bar(out, n, t, o, h, lo, c, v, sp)
            n += 1
    if not ok or lines.bad or n == 0:
        return None
    return out.arrays(n) + (digits,)


cdef tuple _trimmed(tuple arrays, Py_ssize_t n):
    """The arrays cut to the rows read: shrunk in place when nothing else holds them, else copied."""
    cdef list out = []
    for a in arrays:
        if a.shape[0] != n:
            try:
                a.resize(n, refcheck=False)  # no view of it exists yet
            except ValueError:
                a = a[:n].copy()
        out.append(a)
    return tuple(out)
