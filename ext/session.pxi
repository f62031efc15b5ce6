# Time-of-day, day-of-week and trading-session features, from the tick's UTC time. Sessions follow local
# time where they are, so London and New York move with their own daylight-saving switches.

cdef double TWO_PI = 6.283185307179586


cdef inline bint _local_hours(long long utc_ms, long long offset_ms, int open_h, int close_h) noexcept nogil:
    cdef int minute = local_minute_of_day(utc_ms, offset_ms)
    return open_h * 60 <= minute < close_h * 60


cdef inline void session_write_features(DstYear* dst, long long utc_ms, double* f,
                                        unsigned char* warm) noexcept nogil:
    cdef long long day = floor_div(utc_ms, MS_PER_DAY)
    cdef double hour = local_minute_of_day(utc_ms, 0) / 60.0
    cdef double week_pos = weekday_from_days(day) + hour / 24.0
    cdef bint london, new_york
    dst_year_for(dst, utc_ms)
    london = _local_hours(utc_ms, london_offset_ms(dst, utc_ms), 8, 17)
    new_york = _local_hours(utc_ms, new_york_offset_ms(dst, utc_ms), 8, 17)
    f[F_HOUR_SIN] = sin(TWO_PI * hour / 24.0)
    f[F_HOUR_COS] = cos(TWO_PI * hour / 24.0)
    f[F_WEEKDAY_SIN] = sin(TWO_PI * week_pos / 7.0)
    f[F_WEEKDAY_COS] = cos(TWO_PI * week_pos / 7.0)
    f[F_SESSION_ASIA] = 1.0 if _local_hours(utc_ms, 9 * MS_PER_HOUR, 9, 18) else 0.0
    f[F_SESSION_LONDON] = 1.0 if london else 0.0
    f[F_SESSION_NEWYORK] = 1.0 if new_york else 0.0
    f[F_SESSION_OVERLAP] = 1.0 if (london and new_york) else 0.0
    cdef int i
    for i in range(F_HOUR_SIN, F_SESSION_OVERLAP + 1):
        warm[i] = 1
