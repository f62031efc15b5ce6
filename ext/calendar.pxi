# Calendar arithmetic on UTC milliseconds, in C: civil dates, weekdays and the daylight-saving rules of the
# three places the engine cares about. Europe/Prague decides the FTMO day; London and New York decide the
# sessions. The rules are the statutory ones (EU since 1996, US since 2007); a test checks them against
# zoneinfo for every hour of 2007-2040.

cdef enum:
    MS_PER_MINUTE = 60000
    MS_PER_HOUR = 3600000

cdef long long MS_PER_DAY = 86400000


@cython.cdivision(True)
cdef inline long long floor_div(long long a, long long b) noexcept nogil:
    # C division on purpose in every build: the correction below assumes truncation toward zero.
    cdef long long q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline long long days_from_civil(long long y, int m, int d) noexcept nogil:
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    if m <= 2:
        y -= 1
    cdef long long era = floor_div(y, 400)
    cdef long long yoe = y - era * 400
    cdef long long mp = (m + 9) % 12
    cdef long long doy = (153 * mp + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int year_from_days(long long z) noexcept nogil:
    z += 719468
    cdef long long era = floor_div(z, 146097)
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    cdef long long m = mp + 3 if mp < 10 else mp - 9
    return <int>(yoe + era * 400 + (1 if m <= 2 else 0))


cdef inline int weekday_from_days(long long z) noexcept nogil:
    # Monday = 0; 1970-01-01 was a Thursday.
    return <int>((z % 7 + 7 + 3) % 7)


cdef inline long long last_sunday(long long y, int m, int days_in_month) noexcept nogil:
    cdef long long z = days_from_civil(y, m, days_in_month)
    return z - (weekday_from_days(z) + 1) % 7


cdef inline long long nth_sunday(long long y, int m, int n) noexcept nogil:
    cdef long long z = days_from_civil(y, m, 1)
    return z + (6 - weekday_from_days(z)) % 7 + 7 * (n - 1)


cdef struct DstYear:
    int year
    long long eu_start_ms   # last Sunday of March, 01:00 UTC
    long long eu_end_ms     # last Sunday of October, 01:00 UTC
    long long us_start_ms   # second Sunday of March, 02:00 EST = 07:00 UTC
    long long us_end_ms     # first Sunday of November, 02:00 EDT = 06:00 UTC


cdef inline void dst_year_init(DstYear* d, int year) noexcept nogil:
    d.year = year
    d.eu_start_ms = last_sunday(year, 3, 31) * MS_PER_DAY + MS_PER_HOUR
    d.eu_end_ms = last_sunday(year, 10, 31) * MS_PER_DAY + MS_PER_HOUR
    d.us_start_ms = nth_sunday(year, 3, 2) * MS_PER_DAY + 7 * MS_PER_HOUR
    d.us_end_ms = nth_sunday(year, 11, 1) * MS_PER_DAY + 6 * MS_PER_HOUR


cdef inline bint eu_summer(const DstYear* d, long long utc_ms) noexcept nogil:
    return d.eu_start_ms <= utc_ms < d.eu_end_ms


cdef inline bint us_summer(const DstYear* d, long long utc_ms) noexcept nogil:
    return d.us_start_ms <= utc_ms < d.us_end_ms


cdef inline long long prague_offset_ms(const DstYear* d, long long utc_ms) noexcept nogil:
    return 2 * MS_PER_HOUR if eu_summer(d, utc_ms) else MS_PER_HOUR


cdef inline long long london_offset_ms(const DstYear* d, long long utc_ms) noexcept nogil:
    return MS_PER_HOUR if eu_summer(d, utc_ms) else 0


cdef inline long long new_york_offset_ms(const DstYear* d, long long utc_ms) noexcept nogil:
    return -4 * MS_PER_HOUR if us_summer(d, utc_ms) else -5 * MS_PER_HOUR


cdef inline int local_minute_of_day(long long utc_ms, long long offset_ms) noexcept nogil:
    return <int>((floor_div(utc_ms + offset_ms, MS_PER_MINUTE)) % 1440 + 1440) % 1440


cdef inline void dst_year_for(DstYear* d, long long utc_ms) noexcept nogil:
    # Re-derive the year's switch instants only when the year changes: once a year in practice.
    cdef int y = year_from_days(floor_div(utc_ms, MS_PER_DAY))
    if y != d.year:
        dst_year_init(d, y)


def prague_offset_minutes(long long utc_ms):
    """Europe/Prague's UTC offset in minutes at a UTC instant (60 in winter, 120 in summer)."""
    cdef DstYear d
    dst_year_init(&d, year_from_days(floor_div(utc_ms, MS_PER_DAY)))
    return prague_offset_ms(&d, utc_ms) // MS_PER_MINUTE


def london_offset_minutes(long long utc_ms):
    """Europe/London's UTC offset in minutes at a UTC instant."""
    cdef DstYear d
    dst_year_init(&d, year_from_days(floor_div(utc_ms, MS_PER_DAY)))
    return london_offset_ms(&d, utc_ms) // MS_PER_MINUTE


def new_york_offset_minutes(long long utc_ms):
    """America/New_York's UTC offset in minutes at a UTC instant."""
    cdef DstYear d
    dst_year_init(&d, year_from_days(floor_div(utc_ms, MS_PER_DAY)))
    return new_york_offset_ms(&d, utc_ms) // MS_PER_MINUTE
