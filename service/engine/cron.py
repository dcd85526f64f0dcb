"""AWS Application Auto Scaling cron expressions: fire earlier, and measure a weekly window.

Format (Application Auto Scaling user guide, "Schedule recurring scaling actions using cron expressions",
https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-using-cron-expressions.html,
which defers to the EventBridge cron reference,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html):
``cron(Minutes Hours Day-of-month Month Day-of-week Year)``, in UTC unless the action names a Timezone.

============  ===============  =================
Field         Values           Wildcards
============  ===============  =================
Minutes       0-59             , - * /
Hours         0-23             , - * /
Day-of-month  1-31             , - * ? / L W
Month         1-12 or JAN-DEC  , - * /
Day-of-week   1-7 or SUN-SAT   , - * ? L #
Year          1970-2199        , - * /
============  ===============  =================

One of day-of-month and day-of-week must be ``?``, and only one. Day-of-week 1 is Sunday.

Everything here is exact or refuses: a shift that cron cannot express returns None rather than an
approximation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Final

__all__ = ["MINUTES_PER_WEEK", "hours_per_week", "shift_earlier", "week_minutes"]

MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
_DAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # 1..7
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_LAST_DAY_IN_EVERY_MONTH: Final = 28  # a day-of-month above this is missing from some months

_CRON = re.compile(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)")
_NAME = r"[A-Za-z]{3}"
_VALUE = rf"(?:\d{{1,4}}|{_NAME})"
_ITEM = re.compile(rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d{{1,4}})?")
_DOM_SPECIAL = re.compile(r"L|LW|\d{1,2}W")
_DOW_SPECIAL = re.compile(rf"L|(?:[1-7]|{_NAME})(?:L|#[1-5])")


@dataclass(frozen=True)
class _Field:
    low: int
    high: int
    names: tuple[str, ...] = ()


_MINUTE, _HOUR = _Field(0, 59), _Field(0, 23)
_DOM, _MONTH, _DOW, _YEAR = _Field(1, 31), _Field(1, 12, _MONTHS), _Field(1, 7, _DAYS), _Field(1970, 2199)


@dataclass(frozen=True)
class _Cron:
    minute: str
    hour: str
    dom: str
    month: str
    dow: str
    year: str

    def render(self) -> str:
        return f"cron({self.minute} {self.hour} {self.dom} {self.month} {self.dow} {self.year})"


def _value(token: str, field: _Field) -> int | None:
    if token.isdigit():
        number = int(token)
    elif token.upper() in field.names:
        number = field.names.index(token.upper()) + field.low
    else:
        return None
    return number if field.low <= number <= field.high else None


def _expand(text: str, field: _Field) -> frozenset[int] | None:
    """The values a field of numbers, names, ranges, steps and ``*`` selects; None for anything else."""
    chosen: set[int] = set()
    for item in text.split(","):
        if not _ITEM.fullmatch(item):
            return None
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = field.low, field.high
        else:
            lo_text, _, hi_text = base.partition("-")
            lo, hi = _value(lo_text, field), _value(hi_text, field) if hi_text else None
            if lo is None or (hi_text and hi is None):
                return None
            first, last = lo, (hi if hi is not None else (field.high if step_text else lo))
        if step < 1 or first > last:
            return None
        chosen.update(range(first, last + 1, step))
    return frozenset(chosen)


def _day_field_ok(text: str, field: _Field, special: re.Pattern[str]) -> bool:
    return text == "?" or special.fullmatch(text) is not None or _expand(text, field) is not None


def _parse(expression: str) -> _Cron | None:
    match = _CRON.fullmatch(expression.strip())
    if match is None:
        return None
    cron = _Cron(*match.groups())
    if (cron.dom == "?") == (cron.dow == "?"):
        return None  # AWS: exactly one of day-of-month and day-of-week is "?"
    plain = ((cron.minute, _MINUTE), (cron.hour, _HOUR), (cron.month, _MONTH), (cron.year, _YEAR))
    if any(_expand(text, field) is None for text, field in plain):
        return None
    if not _day_field_ok(cron.dom, _DOM, _DOM_SPECIAL) or not _day_field_ok(cron.dow, _DOW, _DOW_SPECIAL):
        return None
    return cron


def _single(text: str, field: _Field) -> int | None:
    return _value(text, field) if text.isdigit() else None


def _render(values: frozenset[int] | set[int], names: tuple[str, ...] = (), low: int = 1) -> str:
    """Values as a list of runs: {2, 3, 4, 6} -> "2-4,6" (with names: "MON-WED,FRI")."""

    def show(v: int) -> str:
        return names[v - low] if names else str(v)

    ordered, parts, i = sorted(values), [], 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(show(ordered[i]) if i == j else f"{show(ordered[i])}-{show(ordered[j])}")
        i = j + 1
    return ",".join(parts)


def shift_earlier(expression: str, seconds: float) -> str | None:
    """The cron that fires ``seconds`` before ``expression`` does, or None if cron cannot say it exactly.

    ``seconds`` is rounded up to whole minutes (cron's resolution), so the result fires earlier than or
    exactly ``seconds`` before the original, never later. Borrowing crosses hours, days and weekdays:
    ``cron(5 0 ? * MON *)`` less 10 minutes is ``cron(55 23 ? * SUN *)``; every day of a day-of-week list or
    range moves (MON-FRI -> SUN-THU, SUN -> SAT); a numeric day-of-month moves when every value stays >= 1
    and is at most 28 (so the day exists in every month, before and after).

    None when: the expression is not a valid AWS cron; ``seconds`` is negative or not finite; the minute (or,
    when the hour must borrow, the hour) is not a single number; or the shift crosses midnight and the days
    use ``L``, ``W`` or ``#``, a day-of-month would fall below 1 (the previous month's last day varies) or
    is above 28, or the month or year is restricted while the days are weekdays or every day (the first days
    of a month or year would move into the previous one). Shifts within one day keep the day fields as
    they are, whatever they hold.
    """
    if not math.isfinite(seconds) or seconds < 0:
        return None
    cron = _parse(expression)
    if cron is None:
        return None
    shift = int(-(-seconds // 60))  # ceil without the rounding of seconds / 60 (5e-324 s is 1 minute)
    if shift == 0:
        return cron.render()
    minute = _single(cron.minute, _MINUTE)
    if minute is None:
        return None
    if minute >= shift:
        return replace(cron, minute=str(minute - shift)).render()
    hour = _single(cron.hour, _HOUR)
    if hour is None:
        return None
    total = hour * 60 + minute - shift
    hours, minutes = divmod(total % MINUTES_PER_DAY, 60)
    moved = replace(cron, minute=str(minutes), hour=str(hours))
    days_back = -(total // MINUTES_PER_DAY)
    return moved.render() if days_back == 0 else _shift_days(moved, days_back)


def _shift_days(cron: _Cron, days: int) -> str | None:
    every_day = cron.dom in ("*", "?") and cron.dow in ("*", "?")
    if every_day or cron.dom == "?":
        if cron.month != "*" or cron.year != "*":
            return None
        if every_day:
            return cron.render()
        weekdays = _expand(cron.dow, _DOW)
        if weekdays is None:
            return None
        moved = {(day - 1 - days) % 7 + 1 for day in weekdays}
        return replace(cron, dow="*" if len(moved) == 7 else _render(moved, _DAYS)).render()
    dates = _expand(cron.dom, _DOM)
    if dates is None or min(dates) - days < 1 or max(dates) > _LAST_DAY_IN_EVERY_MONTH:
        return None
    return replace(cron, dom=_render({date - days for date in dates})).render()


def week_minutes(expression: str) -> frozenset[int] | None:
    """When a weekly cron fires, as minutes since Sunday 00:00 UTC; None unless it repeats every week.

    Weekly means: every month and year (``*``), and every day or a set of weekdays (no ``L`` or ``#``).
    """
    cron = _parse(expression)
    if cron is None or cron.month != "*" or cron.year != "*" or cron.dom not in ("*", "?"):
        return None
    weekdays = frozenset(range(1, 8)) if cron.dow in ("*", "?") else _expand(cron.dow, _DOW)
    minutes, hours = _expand(cron.minute, _MINUTE), _expand(cron.hour, _HOUR)
    if weekdays is None or minutes is None or hours is None:
        return None
    return frozenset(
        (day - 1) * MINUTES_PER_DAY + hour * 60 + minute for day in weekdays for hour in hours for minute in minutes
    )


def hours_per_week(start: str, end: str) -> float | None:
    """How many hours a week a window that opens at cron ``start`` and closes at cron ``end`` is open.

    The window opens at each firing of ``start`` and stays open until the next firing of ``end``, across
    midnight and weekends: 08:00-18:00 MON-FRI is 50 hours, 22:00-06:00 every day is 56. None when either
    cron is not weekly (see ``week_minutes``) or both fire at the same minute (which action wins is
    undefined).
    """
    opens, closes = week_minutes(start), week_minutes(end)
    if not opens or not closes or opens & closes:
        return None
    events = sorted([(t, True) for t in opens] + [(t, False) for t in closes])
    is_open, since, covered = events[-1][1], 0, 0
    for moment, opening in events:
        if is_open:
            covered += moment - since
        since, is_open = moment, opening
    if is_open:
        covered += MINUTES_PER_WEEK - since
    return covered / 60
