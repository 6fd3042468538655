"""Cron schedules as Kubernetes reads them: robfig/cron v3's standard parser (five fields, names,
ranges, lists, steps, `?`, the `@hourly`-style descriptors and `@every <duration>`) and its
`Next`, including the way it walks across daylight-saving changes.

Shared by the apiserver (CronJob validation must reject what the controller cannot parse, with
robfig's words) and the CronJob controller (when to run). Written here rather than taken from a
Python cron library because those differ from robfig in ways users would see: croniter accepts
`7` for Sunday and second/year fields, and none reproduces robfig's day-of-month/day-of-week rule
(OR only when neither is `*`), its star bit dropped by steps, or Go's wall-clock normalisation in
a DST gap. Pure: times in, times out; time zones come from `zoneinfo` (with the `tzdata` package
as the bundled fallback, as Go embeds its own database).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass

STAR_BIT = 1 << 63
MONTH_NAMES = {
    n: i + 1
    for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
DOW_NAMES = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_INT = re.compile(r"^[+-]?[0-9]+$")
_MAX_INT64 = (1 << 63) - 1


class CronError(ValueError):
    """A schedule robfig/cron refuses; the message is robfig's (Kubernetes shows it verbatim)."""


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


MINUTES, HOURS, DOM = Bounds(0, 59), Bounds(0, 23), Bounds(1, 31)
MONTHS, DOW = Bounds(1, 12, MONTH_NAMES), Bounds(0, 6, DOW_NAMES)


def load_location(name: str) -> dt.tzinfo:
    """time.LoadLocation: "" and "UTC" are UTC; anything else must be an IANA zone."""
    if name in ("", "UTC"):
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name}") from None


# ---------------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class SpecSchedule:
    """A crontab line as bit sets (bit n set: value n matches; STAR_BIT: the field was `*`)."""

    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    location: dt.tzinfo = dt.UTC

    def next(self, after: dt.datetime) -> dt.datetime | None:
        """The first activation strictly after `after` (whole seconds), None if none within five
        years (robfig's zero time), e.g. for `0 0 30 2 *`."""
        ts = _next_spec(self, math.floor(after.timestamp()) + 1)
        return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


@dataclass(frozen=True)
class ConstantDelaySchedule:
    """`@every <duration>`: whole seconds, at least one."""

    delay: int

    def next(self, after: dt.datetime) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(math.floor(after.timestamp()) + self.delay, dt.UTC)


Schedule = SpecSchedule | ConstantDelaySchedule


def parse_standard(spec: str, location: dt.tzinfo = dt.UTC) -> Schedule:
    """cron.ParseStandard; `location` stands for the process's local zone (a `TZ=` prefix wins)."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, eq = spec.find(" "), spec.find("=")
        name = spec[eq + 1 : space] if space > eq else spec[eq + 1 :]
        try:
            location = load_location(name)
        except CronError as err:
            raise CronError(f"provided bad location {name}: {err}") from None
        spec = spec[space:].strip() if space > eq else ""
    if spec.startswith("@"):
        return _descriptor(spec, location)
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return SpecSchedule(
        minute=_field(fields[0], MINUTES),
        hour=_field(fields[1], HOURS),
        dom=_field(fields[2], DOM),
        month=_field(fields[3], MONTHS),
        dow=_field(fields[4], DOW),
        location=location,
    )


def _field(text: str, bounds: Bounds) -> int:
    """A comma-separated list of ranges (empty items are skipped, as strings.FieldsFunc does)."""
    bits = 0
    for expr in (part for part in text.split(",") if part):
        bits |= _range(expr, bounds)
    return bits


def _range(expr: str, r: Bounds) -> int:
    """number | name | `*` | `?`, optionally `-` another, optionally `/` a step."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = r.low, r.high, STAR_BIT
    else:
        start = _int_or_name(low_high[0], r.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], r.names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _non_negative_int(range_and_step[1])
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = r.high
        if step > 1:
            extra = 0
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < r.low:
        raise CronError(f"beginning of range ({start}) below minimum ({r.low}): {expr}")
    if end > r.high:
        raise CronError(f"end of range ({end}) above maximum ({r.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return sum(1 << i for i in range(start, end + 1, step)) | extra


def _int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _non_negative_int(expr)


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _non_negative_int(expr: str) -> int:
    """strconv.Atoi with robfig's wording, then the sign check."""
    if not _INT.match(expr):
        reason = f"strconv.Atoi: parsing {_go_quote(expr)}: invalid syntax"
        raise CronError(f"failed to parse int from {expr}: {reason}")
    num = int(expr)
    if num > _MAX_INT64 or num < -_MAX_INT64 - 1:
        reason = f"strconv.Atoi: parsing {_go_quote(expr)}: value out of range"
        raise CronError(f"failed to parse int from {expr}: {reason}")
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _all(r: Bounds) -> int:
    return sum(1 << i for i in range(r.low, r.high + 1)) | STAR_BIT


def _descriptor(spec: str, location: dt.tzinfo) -> Schedule:
    first = {"minute": 1 << 0, "hour": 1 << 0, "dom": 1 << 1, "month": 1 << 1}
    every = {"minute": _all(MINUTES), "hour": _all(HOURS), "dom": _all(DOM), "month": _all(MONTHS)}
    shapes = {
        "@yearly": ("minute", "hour", "dom", "month"),
        "@annually": ("minute", "hour", "dom", "month"),
        "@monthly": ("minute", "hour", "dom"),
        "@weekly": ("minute", "hour"),
        "@daily": ("minute", "hour"),
        "@midnight": ("minute", "hour"),
        "@hourly": ("minute",),
    }
    if spec in shapes:
        fixed = shapes[spec]
        parts = {name: first[name] if name in fixed else every[name] for name in first}
        dow = 1 << 0 if spec == "@weekly" else _all(DOW)
        return SpecSchedule(dow=dow, location=location, **parts)
    if spec.startswith("@every "):
        text = spec[len("@every ") :]
        try:
            nanos = parse_go_duration(text)
        except CronError as err:
            raise CronError(f"failed to parse duration {spec}: {err}") from None
        return ConstantDelaySchedule(max(1, nanos // 1_000_000_000))
    raise CronError(f"unrecognized descriptor: {spec}")


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """time.ParseDuration, in nanoseconds: `1h30m`, `90s`, `1.5h`; errors in Go's words."""
    quoted = _go_quote(text)
    rest, sign = text, 1
    if rest[:1] in ("+", "-"):
        sign, rest = (-1 if rest[0] == "-" else 1), rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise CronError(f"time: invalid duration {quoted}")
    total = 0
    while rest:
        match = _DURATION_PART.match(rest)
        number, unit = (match.group(1), match.group(2)) if match else ("", "")
        if number in ("", "."):
            raise CronError(f"time: invalid duration {quoted}")
        if not unit:
            raise CronError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise CronError(f'time: unknown unit "{unit}" in duration {quoted}')
        whole, _, frac = number.partition(".")
        total += int(whole or 0) * _UNITS[unit] + (int(frac) * _UNITS[unit] // 10 ** len(frac) if frac else 0)
        rest = rest[len(number) + len(unit) :]
    return sign * total


# ---------------------------------------------------------------------------------- SpecSchedule.Next


def _local(ts: int, loc: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, loc)


def _offset(ts: int, loc: dt.tzinfo) -> int:
    offset = _local(ts, loc).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def go_date(year: int, month: int, day: int, hour: int, minute: int, loc: dt.tzinfo) -> int:
    """time.Date as a Unix time: out-of-range values roll over, and a wall time that a DST change
    skips or repeats gets the offset Go picks (look up the wall time read as UTC; if that offset
    puts the instant outside its own zone period, take the offset in force at the instant)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    days = dt.date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
    wall = days * 86400 + hour * 3600 + minute * 60
    offset = _offset(wall, loc)
    if offset:
        at_instant = _offset(wall - offset, loc)
        if at_instant != offset:
            offset = at_instant
    return wall - offset


def _weekday(t: dt.datetime) -> int:
    """Go's numbering: Sunday is 0."""
    return (t.weekday() + 1) % 7


def _day_matches(s: SpecSchedule, t: dt.datetime) -> bool:
    """Both must match, unless neither field is `*`: then either will do (cron's classic rule)."""
    dom_match = bool(1 << t.day & s.dom)
    dow_match = bool(1 << _weekday(t) & s.dow)
    if s.dom & STAR_BIT or s.dow & STAR_BIT:
        return dom_match and dow_match
    return dom_match or dow_match


def _next_spec(s: SpecSchedule, ts: int) -> int | None:
    """robfig's SpecSchedule.Next from the second `ts` on: find the month, then the day, the hour,
    the minute; moving a field resets the finer ones, and wrapping a field starts over."""
    loc = s.location
    added = False
    year_limit = _local(ts, loc).year + 5
    while True:  # WRAP
        t = _local(ts, loc)
        if t.year > year_limit:
            return None
        wrapped = False
        while not 1 << t.month & s.month:
            if not added:
                added = True
                ts = go_date(t.year, t.month, 1, 0, 0, loc)
                t = _local(ts, loc)
            ts = go_date(t.year, t.month + 1, t.day, t.hour, t.minute, loc) + t.second
            t = _local(ts, loc)
            if t.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not _day_matches(s, t):
            if not added:
                added = True
                ts = go_date(t.year, t.month, t.day, 0, 0, loc)
                t = _local(ts, loc)
            ts = go_date(t.year, t.month, t.day + 1, t.hour, t.minute, loc) + t.second
            t = _local(ts, loc)
            if t.hour != 0:  # midnight moved by DST: step back (or on) to it
                ts += (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600
                t = _local(ts, loc)
            if t.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not 1 << t.hour & s.hour:
            if not added:
                added = True
                ts = go_date(t.year, t.month, t.day, t.hour, 0, loc)
            ts += 3600
            t = _local(ts, loc)
            if t.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not 1 << t.minute & s.minute:
            if not added:
                added = True
                ts -= ts % 60
            ts += 60
            t = _local(ts, loc)
            if t.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while t.second != 0:  # the standard parser's seconds field is always 0
            added = True
            ts += 1
            t = _local(ts, loc)
            if t.second == 0:
                wrapped = True
                break
        if wrapped:
            continue
        return ts
