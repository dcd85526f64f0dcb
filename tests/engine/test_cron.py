"""AWS Application Auto Scaling crons: shifting earlier across boundaries, and weekly window lengths."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.engine.cron import MINUTES_PER_WEEK, hours_per_week, shift_earlier, week_minutes

_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@pytest.mark.parametrize(
    ("expression", "seconds", "shifted"),
    [
        ("cron(5 0 ? * MON *)", 600, "cron(55 23 ? * SUN *)"),
        ("cron(30 8 ? * MON-FRI *)", 600, "cron(20 8 ? * MON-FRI *)"),
        ("cron(0 8 ? * MON-FRI *)", 600, "cron(50 7 ? * MON-FRI *)"),
        ("cron(10 0 ? * MON-FRI *)", 1200, "cron(50 23 ? * SUN-THU *)"),
        ("cron(0 0 ? * SUN *)", 60, "cron(59 23 ? * SAT *)"),
        ("cron(0 0 ? * SUN,WED,SAT *)", 60, "cron(59 23 ? * TUE,FRI-SAT *)"),
        ("cron(0 0 ? * 1-2 *)", 60, "cron(59 23 ? * SUN,SAT *)"),
        ("cron(0 0 ? * SUN-SAT *)", 60, "cron(59 23 ? * * *)"),
        ("cron(0 1 ? * MON *)", 2 * 86_400 + 3600, "cron(0 0 ? * SAT *)"),
        ("cron(0 0 * * ? *)", 60, "cron(59 23 * * ? *)"),
        ("cron(0 0 ? * * *)", 60, "cron(59 23 ? * * *)"),
        ("cron(0 0 15 * ? *)", 60, "cron(59 23 14 * ? *)"),
        ("cron(0 0 2,10-12 JUN ? 2030)", 60, "cron(59 23 1,9-11 JUN ? 2030)"),
        ("cron(0 8 L * ? *)", 600, "cron(50 7 L * ? *)"),  # same day: any day fields stay
        ("cron(0 8 ? * 2#1 *)", 60, "cron(59 7 ? * 2#1 *)"),
        ("cron(15 * * * ? *)", 600, "cron(5 * * * ? *)"),  # within the hour, any hour
        ("cron(0 8 ? * MON *)", 1, "cron(59 7 ? * MON *)"),  # 1 s rounds up to a whole minute
        ("cron(0 8 ? * MON *)", 5e-324, "cron(59 7 ? * MON *)"),  # even when seconds / 60 underflows
        ("cron(0 8 ? * MON *)", 0, "cron(0 8 ? * MON *)"),
    ],
)
def test_shift_earlier(expression: str, seconds: float, shifted: str) -> None:
    assert shift_earlier(expression, seconds) == shifted


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("cron(0 0 L * ? *)", 60),  # the day before the last day is not always the 30th
        ("cron(0 0 15W * ? *)", 60),
        ("cron(0 0 ? * 6L *)", 60),
        ("cron(0 0 ? * 2#1 *)", 60),  # the first Monday's eve may be in the previous month
        ("cron(0 0 ? * L *)", 60),
        ("cron(0 0 1 * ? *)", 60),  # the previous month's last day varies
        ("cron(0 0 30 * ? *)", 60),  # 29 exists in months where 30 does not
        ("cron(0 0 1/7 * ? *)", 60),
        ("cron(0 0 * JUN ? *)", 60),  # June 1 would move into May
        ("cron(0 0 ? * MON * 2030)", 60),  # seven fields
        ("cron(0 0 ? * MON 2030)", 60),  # a restricted year: its first day could move into the year before
        ("cron(0/5 8 ? * MON *)", 60),
        ("cron(5 * ? * MON *)", 600),  # the hour must borrow and is not a single number
        ("cron(0 8-9 ? * MON *)", 60),
        ("cron(0 8 * * MON *)", 60),  # AWS: one of the day fields must be "?"
        ("cron(0 8 ? * ? *)", 60),
        ("cron(0 25 ? * MON *)", 60),
        ("cron(0 8 ? * FUN *)", 60),
        ("cron(0 8 ? * MON)", 60),
        ("rate(5 minutes)", 60),
        ("cron(0 8 ? * MON *)", -1),
        ("cron(0 8 ? * MON *)", math.inf),
    ],
)
def test_shift_earlier_refuses_what_cron_cannot_say(expression: str, seconds: float) -> None:
    assert shift_earlier(expression, seconds) is None


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("cron(0 8 ? * MON-FRI *)", "cron(0 18 ? * MON-FRI *)", 50),
        ("cron(0 8 * * ? *)", "cron(30 18 * * ? *)", 73.5),
        ("cron(0 22 * * ? *)", "cron(0 6 ? * * *)", 56),  # across midnight
        ("cron(0 8 ? * MON *)", "cron(0 18 ? * FRI *)", 106),
        ("cron(0 20 ? * FRI *)", "cron(0 6 ? * MON *)", 58),  # across the weekend and the week's end
        ("cron(0 8 ? * 2-6 *)", "cron(0 18 ? * MON-FRI *)", 50),
    ],
)
def test_hours_per_week(start: str, end: str, hours: float) -> None:
    assert hours_per_week(start, end) == hours


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("cron(0 8 1 * ? *)", "cron(0 18 1 * ? *)"),  # monthly, not weekly
        ("cron(0 8 ? * 2#1 *)", "cron(0 18 ? * 2#1 *)"),
        ("cron(0 8 ? JAN MON *)", "cron(0 18 ? JAN MON *)"),
        ("cron(0 8 ? * MON *)", "cron(0 8 ? * MON *)"),  # same minute: which action wins is undefined
        ("cron(0 8 ? * MON *)", "not a cron"),
    ],
)
def test_hours_per_week_refuses(start: str, end: str) -> None:
    assert hours_per_week(start, end) is None


# ---------------------------------------------------------------- properties

_day_sets = st.frozensets(st.integers(1, 7), min_size=1)


@st.composite
def _weekly_crons(draw: st.DrawFn) -> str:
    """Single minute and hour, on every day or on a set of weekdays written as names, numbers or ranges."""
    minute, hour = draw(st.integers(0, 59)), draw(st.integers(0, 23))
    style = draw(st.sampled_from(["every-dom", "every-dow", "names", "numbers", "range"]))
    if style == "every-dom":
        return f"cron({minute} {hour} * * ? *)"
    if style == "every-dow":
        return f"cron({minute} {hour} ? * * *)"
    if style == "range":
        first = draw(st.integers(1, 7))
        last = draw(st.integers(first, 7))
        days = f"{_DAYS[first - 1]}-{_DAYS[last - 1]}" if draw(st.booleans()) else f"{first}-{last}"
    else:
        chosen = sorted(draw(_day_sets))
        days = ",".join(_DAYS[d - 1] if style == "names" else str(d) for d in chosen)
    return f"cron({minute} {hour} ? * {days} *)"


_shifts = st.integers(0, 3 * MINUTES_PER_WEEK * 60) | st.floats(0, 3 * MINUTES_PER_WEEK * 60, allow_nan=False)


@settings(max_examples=300)
@given(expression=_weekly_crons(), seconds=_shifts)
def test_shifted_weekly_cron_fires_exactly_that_much_earlier(expression: str, seconds: float) -> None:
    shifted = shift_earlier(expression, seconds)
    assert shifted is not None
    before, after = week_minutes(expression), week_minutes(shifted)
    assert before is not None and after is not None
    minutes = math.ceil(Fraction(seconds) / 60)  # exact, whatever the float
    assert after == {(t - minutes) % MINUTES_PER_WEEK for t in before}
    assert minutes * 60 >= seconds  # earlier or equal, never later


@settings(max_examples=100)
@given(expression=_weekly_crons())
def test_shift_by_zero_is_the_same_schedule(expression: str) -> None:
    shifted = shift_earlier(expression, 0)
    assert shifted is not None and week_minutes(shifted) == week_minutes(expression)


@settings(max_examples=200)
@given(
    dates=st.frozensets(st.integers(1, 28), min_size=1, max_size=6),
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    minutes=st.integers(0, 27 * 24 * 60),
)
def test_day_of_month_shifts_within_the_month(dates: frozenset[int], minute: int, hour: int, minutes: int) -> None:
    expression = f"cron({minute} {hour} {','.join(map(str, sorted(dates)))} * ? *)"
    shifted = shift_earlier(expression, minutes * 60)
    days_back = -((hour * 60 + minute - minutes) // (24 * 60))
    if min(dates) - days_back < 1:
        assert shifted is None
        return
    assert shifted is not None
    new_minute, new_hour, new_dates = shifted.removeprefix("cron(").split()[:3]
    for year, month in ((2024, 2), (2025, 2), (2025, 4), (2025, 12)):
        original = {datetime(year, month, d, hour, minute) - timedelta(minutes=minutes) for d in dates}
        moved = {datetime(year, month, d, int(new_hour), int(new_minute)) for d in _expand_days(new_dates)}
        assert moved == original


def _expand_days(field: str) -> set[int]:
    days: set[int] = set()
    for part in field.split(","):
        first, _, last = part.partition("-")
        days.update(range(int(first), int(last or first) + 1))
    return days


@settings(max_examples=200)
@given(start=_weekly_crons(), end=_weekly_crons())
def test_hours_per_week_matches_a_minute_by_minute_walk(start: str, end: str) -> None:
    opens, closes = week_minutes(start), week_minutes(end)
    assert opens is not None and closes is not None
    hours = hours_per_week(start, end)
    if opens & closes:
        assert hours is None
        return
    # Walk two weeks so the state at the start of the second is settled, count the second.
    state, open_minutes = False, 0
    for t in range(2 * MINUTES_PER_WEEK):
        minute = t % MINUTES_PER_WEEK
        state = True if minute in opens else False if minute in closes else state
        open_minutes += state and t >= MINUTES_PER_WEEK
    assert hours == open_minutes / 60
