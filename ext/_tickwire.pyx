# The compiled TICK reader: a TICK frame written the usual way (compact JSON, the fields in the protocol's
# order, plain ASCII text) read in one pass in C into a tuple of its values in the model's field order, each
# position a dict as `protocol.Position.model_dump()` gives it. A tuple rather than a dict for the TICK
# itself: the node unpacks it in one step, and it costs a fraction of a dict to build.
#
# It holds no rule of its own: the fields, their kinds and bounds come from the pydantic models
# (mt5bridge/fastwire.py builds the layout and hands it over). Whatever it is not sure of, it does not
# judge: any other layout (whitespace, another field order, a missing optional field, an escape or a
# non-ASCII byte in a string, an integer too long to hold exactly) gives None and the models read the
# frame. So it can only ever accept a subset of what the models accept, with the very same values;
# tests/test_fastwire.py holds it to that on generated frames.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.conversion cimport PyOS_string_to_double
from cpython.dict cimport PyDict_Copy, PyDict_SetItem
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.ref cimport PyObject
from cpython.list cimport PyList_New, PyList_Append
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_GET_ITEM
from cpython.unicode cimport PyUnicode_FromStringAndSize
from libc.math cimport isfinite
from libc.string cimport memcmp, memcpy
from libc.stdlib cimport malloc, free

import sys

# Field kinds, as fastwire names them.
KIND_INT = 1
KIND_FLOAT = 2
KIND_TEXT = 3        # a string; with null_as_empty, null reads as ""
KIND_CHOICE = 4      # a string that must be one of the given values
KIND_LIST = 5        # the list of positions (only in the TICK's layout)

cdef enum:
    K_INT = 1
    K_FLOAT = 2
    K_TEXT = 3
    K_CHOICE = 4
    K_LIST = 5
    MAX_CHOICES = 4
    # Integers of at most 18 digits fit a signed 64-bit integer, and pydantic reads them as the same int.
    MAX_INT_DIGITS = 18
    # Below 10**15 < 2**53 a decimal mantissa is exact in a double, so mantissa / 10**k (k <= 22, exact too)
    # is correctly rounded by the one division: the same double as any correct reader gives.
    MAX_FAST_DIGITS = 15
    MAX_FAST_EXP10 = 22

cdef double[23] POW10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]


cdef struct FieldRule:
    const char *key          # '"name":' as it appears in the frame
    Py_ssize_t key_len
    int kind
    bint has_lo
    bint lo_strict           # value > lo (else value >= lo)
    double lo
    bint has_hi
    bint hi_strict
    double hi
    long long int_lo         # the bounds of an integer field, compared as integers: a bound such as 2**53 - 1
    long long int_hi         # is exact in a double, but the values beside it are not
    Py_ssize_t min_len       # characters of a string, items of the list
    Py_ssize_t max_len       # -1 = no limit
    bint null_as_empty
    int n_choices
    const char *choices[MAX_CHOICES]
    Py_ssize_t choice_len[MAX_CHOICES]
    PyObject *choice_str[MAX_CHOICES]   # the value itself, interned: returned as is, no string made per read


cdef class TickReader:
    """Reads TICK frames of the usual layout; `read(frame)` gives the dict or None (then ask the models)."""

    cdef FieldRule *tick_rules
    cdef FieldRule *position_rules
    cdef int n_tick
    cdef int n_position
    cdef list _keep          # the Python objects whose bytes the rules point into
    cdef tuple position_keys
    # A dict with every key already in place, copied for each position read: setting a key that is present
    # never grows the table, where a fresh dict would be resized twice on the way to thirteen keys.
    cdef dict position_template
    cdef list ordered            # (lower, higher) indexes of TICK values that must not be in the other order
    cdef object fallback

    def __cinit__(self):
        self.tick_rules = NULL
        self.position_rules = NULL

    def __init__(self, tick_layout, position_layout, ordered=(), fallback=None):
        """Each layout: one tuple per field, in the model's order:
        (name, kind, lo, lo_strict, hi, hi_strict, min_len, max_len, null_as_empty, choices), where lo and hi
        are None when unbounded, max_len is -1 when unlimited and choices is a tuple of str. ``ordered``: pairs
        of float fields of the TICK, (lower, higher), whose values must not be the other way round.
        ``fallback(frame)`` reads a frame of any other layout (None: such a frame gives None)."""
        self._keep = []
        self.n_tick = len(tick_layout)
        self.n_position = len(position_layout)
        self.tick_rules = self._rules(tick_layout)
        self.position_rules = self._rules(position_layout)
        self.position_keys = tuple(sys.intern(f[0]) for f in position_layout)
        if any(f[1] == K_LIST for f in position_layout):
            raise ValueError("a position cannot hold a list")
        self.position_template = dict.fromkeys(self.position_keys)
        floats = {f[0] for f in tick_layout if f[1] == K_FLOAT}
        for lower, higher in ordered:
            if lower not in floats or higher not in floats:
                raise ValueError(f"ordered fields {lower!r} and {higher!r} must both be float fields of the TICK")
        names = [f[0] for f in tick_layout]
        self.ordered = [(names.index(lower), names.index(higher)) for lower, higher in ordered]
        self.fallback = fallback

    cdef FieldRule *_rules(self, layout) except NULL:
        cdef FieldRule *rules = <FieldRule *> malloc(max(1, len(layout)) * sizeof(FieldRule))
        cdef FieldRule *r
        cdef int i, c
        if rules == NULL:
            raise MemoryError()
        for i, field in enumerate(layout):
            name, kind, lo, lo_strict, hi, hi_strict, min_len, max_len, null_as_empty, choices = field
            r = &rules[i]
            key = ('"%s":' % name).encode("ascii")
            self._keep.append(key)
            r.key = PyBytes_AS_STRING(key)
            r.key_len = PyBytes_GET_SIZE(key)
            if kind not in (K_INT, K_FLOAT, K_TEXT, K_CHOICE, K_LIST):
                free(rules)
                raise ValueError(f"field {name}: unknown kind {kind}")
            r.kind = kind
            r.has_lo = lo is not None
            r.lo = float(lo) if lo is not None else 0.0
            r.lo_strict = bool(lo_strict)
            r.has_hi = hi is not None
            r.hi = float(hi) if hi is not None else 0.0
            r.hi_strict = bool(hi_strict)
            r.int_lo = lo if kind == K_INT and lo is not None else 0
            r.int_hi = hi if kind == K_INT and hi is not None else 0
            r.min_len = min_len
            r.max_len = max_len
            r.null_as_empty = bool(null_as_empty)
            if len(choices) > MAX_CHOICES:
                free(rules)
                raise ValueError(f"field {name}: more than {MAX_CHOICES} choices")
            r.n_choices = len(choices)
            for c, choice in enumerate(choices):
                value = choice.encode("ascii")
                self._keep.append(value)
                r.choices[c] = PyBytes_AS_STRING(value)
                r.choice_len[c] = PyBytes_GET_SIZE(value)
                text = sys.intern(choice)
                self._keep.append(text)
                r.choice_str[c] = <PyObject *> text
        return rules

    def __dealloc__(self):
        free(self.tick_rules)
        free(self.position_rules)

    def read(self, bytes frame, Py_ssize_t max_bytes):
        """The TICK in ``frame`` as the tuple of its values in the model's field order: read here when it has
        the usual layout, else by the fallback. None when the frame is longer than ``max_bytes``, is not a
        valid TICK, or is of another layout and there is no fallback."""
        cdef PyObject *lower
        cdef PyObject *higher
        if PyBytes_GET_SIZE(frame) > max_bytes:
            return None
        tick = self.read_usual(frame)
        if tick is None:
            return self.fallback(frame) if self.fallback is not None else None
        for pair in self.ordered:
            lower = PyTuple_GET_ITEM(tick, pair[0])
            higher = PyTuple_GET_ITEM(tick, pair[1])
            if PyFloat_AS_DOUBLE(<object> lower) > PyFloat_AS_DOUBLE(<object> higher):
                return None
        return tick

    def read_usual(self, bytes frame):
        """The frame read as a TICK of the usual layout into the tuple of its values, its fields checked one by
        one (not ``ordered``); None when it is anything else."""
        cdef const char *p = PyBytes_AS_STRING(frame)
        cdef const char *end = p + PyBytes_GET_SIZE(frame)
        cdef const char *pos = p
        result = _read_object(&pos, end, self.tick_rules, self.n_tick, None, None, self)
        if result is None or pos != end:
            return None
        return result


cdef object _read_object(const char **cursor, const char *end, FieldRule *rules, int n, tuple keys,
                         dict template, TickReader reader):
    """One object of the layout at *cursor, as the tuple of its values when ``template`` is None, else as a
    dict copied from ``template`` (its keys, ``keys``); advances the cursor past its closing brace.
    None = not sure."""
    cdef const char *p = cursor[0]
    cdef FieldRule *r
    cdef int i
    cdef object value
    if p >= end or p[0] != b'{':
        return None
    p += 1
    out = PyTuple_New(n) if template is None else PyDict_Copy(template)
    for i in range(n):
        r = &rules[i]
        if i:
            if p >= end or p[0] != b',':
                return None
            p += 1
        if end - p < r.key_len or memcmp(p, r.key, r.key_len) != 0:
            return None
        p += r.key_len
        if r.kind == K_FLOAT:
            value = _read_float(&p, end, r)
        elif r.kind == K_INT:
            value = _read_int(&p, end, r)
        elif r.kind == K_LIST:
            value = _read_positions(&p, end, r, reader)
        else:
            value = _read_text(&p, end, r)
        if value is None:
            return None
        if template is None:
            Py_INCREF(value)
            PyTuple_SET_ITEM(out, i, value)
        else:
            PyDict_SetItem(out, keys[i], value)
    if p >= end or p[0] != b'}':
        return None
    cursor[0] = p + 1
    return out


cdef inline bint _within(double v, FieldRule *r) noexcept:
    if r.has_lo and (v <= r.lo if r.lo_strict else v < r.lo):
        return False
    if r.has_hi and (v >= r.hi if r.hi_strict else v > r.hi):
        return False
    return True


cdef inline bint _int_within(long long v, FieldRule *r) noexcept:
    if r.has_lo and (v <= r.int_lo if r.lo_strict else v < r.int_lo):
        return False
    if r.has_hi and (v >= r.int_hi if r.hi_strict else v > r.int_hi):
        return False
    return True


cdef object _read_int(const char **cursor, const char *end, FieldRule *r):
    # JSON integer: -?(0|[1-9][0-9]*), no fraction or exponent (the models refuse 1.0 for an int, strictly).
    cdef const char *p = cursor[0]
    cdef const char *start
    cdef long long v = 0
    cdef bint negative = False
    cdef int digits
    if p < end and p[0] == b'-':
        negative = True
        p += 1
    start = p
    while p < end and b'0' <= p[0] <= b'9':
        v = v * 10 + (p[0] - 48)
        p += 1
        if p - start > MAX_INT_DIGITS:
            return None
    digits = <int> (p - start)
    if digits == 0 or (digits > 1 and start[0] == b'0'):
        return None
    if p < end and (p[0] == b'.' or p[0] == b'e' or p[0] == b'E'):
        return None
    if negative:
        v = -v
    # At most 18 digits: the value is exact in a long long, and so is every bound (fastwire checks them).
    if not _int_within(v, r):
        return None
    cursor[0] = p
    return v


cdef object _read_float(const char **cursor, const char *end, FieldRule *r):
    # JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; an integer is read as the int it is, then
    # made a float, as the models do for a float field.
    cdef const char *p = cursor[0]
    cdef const char *start = p
    cdef const char *int_start
    cdef long long mantissa = 0
    cdef int digits = 0
    cdef int frac = 0
    cdef bint negative = False
    cdef bint exponent = False
    cdef double v
    cdef char *stop = NULL
    if p < end and p[0] == b'-':
        negative = True
        p += 1
    int_start = p
    while p < end and b'0' <= p[0] <= b'9':
        if digits < 19:
            mantissa = mantissa * 10 + (p[0] - 48)
        digits += 1
        p += 1
    if p == int_start or (p - int_start > 1 and int_start[0] == b'0'):
        return None
    if p < end and p[0] == b'.':
        p += 1
        if p >= end or not (b'0' <= p[0] <= b'9'):
            return None
        while p < end and b'0' <= p[0] <= b'9':
            if digits < 19:
                mantissa = mantissa * 10 + (p[0] - 48)
            digits += 1
            frac += 1
            p += 1
        if p < end and (p[0] == b'e' or p[0] == b'E'):
            exponent = True
    elif p < end and (p[0] == b'e' or p[0] == b'E'):
        exponent = True
    if exponent:
        p += 1
        if p < end and (p[0] == b'+' or p[0] == b'-'):
            p += 1
        if p >= end or not (b'0' <= p[0] <= b'9'):
            return None
        while p < end and b'0' <= p[0] <= b'9':
            p += 1
    if frac == 0 and not exponent:
        # An integer token: the models read the int, then make it a float (so -0 gives 0.0).
        if digits > MAX_INT_DIGITS:
            return None
        v = <double> (-mantissa if negative else mantissa)
    elif not exponent and digits <= MAX_FAST_DIGITS and frac <= MAX_FAST_EXP10:
        v = <double> mantissa / POW10[frac]
        if negative:
            v = -v
    else:
        # Python's own correctly rounded reader; the token is valid JSON, so it reads all of it. The byte
        # after it (',', '}' or ']', or the frame's closing NUL) stops it.
        v = PyOS_string_to_double(start, &stop, NULL)
        if stop != p:
            return None
    if not isfinite(v) or not _within(v, r):
        return None
    cursor[0] = p
    return v


cdef object _read_text(const char **cursor, const char *end, FieldRule *r):
    # A string of printable ASCII without escapes; anything else is left to the models.
    cdef const char *p = cursor[0]
    cdef const char *start
    cdef Py_ssize_t n
    cdef int c
    cdef unsigned char ch
    if r.null_as_empty and end - p >= 4 and memcmp(p, b"null", 4) == 0:
        if r.min_len > 0:
            return None
        cursor[0] = p + 4
        return ""
    if p >= end or p[0] != b'"':
        return None
    p += 1
    start = p
    while True:
        if p >= end:
            return None
        ch = <unsigned char> p[0]
        if ch == b'"':
            break
        if ch < 0x20 or ch >= 0x80 or ch == b'\\':
            return None
        p += 1
    n = p - start
    if n < r.min_len or (r.max_len >= 0 and n > r.max_len):
        return None
    cursor[0] = p + 1
    if r.kind == K_CHOICE:
        for c in range(r.n_choices):
            if n == r.choice_len[c] and memcmp(start, r.choices[c], n) == 0:
                return <object> r.choice_str[c]
        return None
    return PyUnicode_FromStringAndSize(start, n)


cdef object _read_positions(const char **cursor, const char *end, FieldRule *r, TickReader reader):
    cdef const char *p = cursor[0]
    cdef Py_ssize_t count = 0
    if p >= end or p[0] != b'[':
        return None
    p += 1
    out = PyList_New(0)
    if p < end and p[0] == b']':
        p += 1
    else:
        while True:
            item = _read_object(&p, end, reader.position_rules, reader.n_position, reader.position_keys,
                                reader.position_template, reader)
            if item is None:
                return None
            PyList_Append(out, item)
            count += 1
            if r.max_len >= 0 and count > r.max_len:
                return None
            if p < end and p[0] == b',':
                p += 1
                continue
            if p < end and p[0] == b']':
                p += 1
                break
            return None
    if count < r.min_len:
        return None
    cursor[0] = p
    return out


# ---- the reply to an ordinary tick -------------------------------------------------------------------------

cdef bytes _HOLD_HEAD = b'{"type":"COMMAND","reply_to":'


def hold_reply(long long seq, bytes tail):
    """``{"type":"COMMAND","reply_to":<seq>`` followed by ``tail`` (the rest of a HOLD, fixed per chart and
    reason): the reply to most ticks, made in one allocation and no format parsing."""
    cdef char digits[24]
    cdef int n = 0
    cdef unsigned long long v
    cdef bint negative = seq < 0
    cdef Py_ssize_t head_len = PyBytes_GET_SIZE(_HOLD_HEAD)
    cdef Py_ssize_t tail_len = PyBytes_GET_SIZE(tail)
    cdef char *out
    v = <unsigned long long> (-(seq + 1)) + 1 if negative else <unsigned long long> seq
    while True:
        digits[n] = <char> (48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    if negative:
        digits[n] = b'-'
        n += 1
    reply = PyBytes_FromStringAndSize(NULL, head_len + n + tail_len)
    out = PyBytes_AS_STRING(reply)
    memcpy(out, PyBytes_AS_STRING(_HOLD_HEAD), head_len)
    out += head_len
    while n:
        n -= 1
        out[0] = digits[n]
        out += 1
    memcpy(out, PyBytes_AS_STRING(tail), tail_len)
    return reply
