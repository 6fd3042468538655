"""kubelite.cron: robfig/cron's standard parser and Next, as Kubernetes' CronJobs see them."""

from __future__ import annotations

import datetime as dt

import pytest

from kubelite.cron import CronError, load_location, parse_go_duration, parse_standard


def at(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def next_after(spec: str, start: str, zone: str = "UTC") -> str:
    schedule = parse_standard(spec, load_location(zone))
    found = schedule.next(at(start))
    assert found is not None
    return found.astimezone(load_location(zone)).strftime("%Y-%m-%dT%H:%M:%S%z")


@pytest.mark.parametrize(
    ("start", "spec", "expected"),
    [
        ("2026-01-01T00:00:30+0000", "*/1 * * * *", "2026-01-01T00:01:00+0000"),
        ("2026-01-01T00:01:00+0000", "* * * * *", "2026-01-01T00:02:00+0000"),
        ("2026-01-01T00:00:00+0000", "*/15 * * * *", "2026-01-01T00:15:00+0000"),
        ("2026-01-01T00:50:00+0000", "5-20/5 * * * *", "2026-01-01T01:05:00+0000"),
        ("2026-01-01T00:00:00+0000", "0 9,17 * * *", "2026-01-01T09:00:00+0000"),
        ("2026-01-01T10:00:00+0000", "0 9,17 * * *", "2026-01-01T17:00:00+0000"),
        # 2026-01-01 is a Thursday; names for months and days, in any case
        ("2026-01-01T00:00:00+0000", "0 0 * * MON", "2026-01-05T00:00:00+0000"),
        ("2026-01-01T00:00:00+0000", "0 0 1 jun *", "2026-06-01T00:00:00+0000"),
        ("2026-01-01T00:00:00+0000", "0 0 * * mon-fri", "2026-01-02T00:00:00+0000"),
        # both day fields restricted: either matches (the 15th is a Thursday, the 5th a Monday)
        ("2026-01-01T00:00:00+0000", "0 0 15 * MON", "2026-01-05T00:00:00+0000"),
        # a step clears the star: `*/2` in day-of-week makes it restrictive, so OR applies
        ("2026-01-01T00:00:00+0000", "0 0 10 * */2", "2026-01-03T00:00:00+0000"),
        ("2026-01-01T00:00:00+0000", "0 0 29 2 *", "2028-02-29T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@hourly", "2026-03-04T06:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@daily", "2026-03-05T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@midnight", "2026-03-05T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@weekly", "2026-03-08T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@monthly", "2026-04-01T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@yearly", "2027-01-01T00:00:00+0000"),
        ("2026-03-04T05:06:00+0000", "@annually", "2027-01-01T00:00:00+0000"),
        ("2026-03-04T05:06:07+0000", "@every 1h30m", "2026-03-04T06:36:07+0000"),
    ],
)
def test_next_in_utc(start: str, spec: str, expected: str) -> None:
    assert next_after(spec, start) == expected


# robfig/cron's own DST cases (spec_test.go), with the seconds field dropped.
@pytest.mark.parametrize(
    ("start", "spec", "expected"),
    [
        # spring forward in New York: 02:00-03:00 does not exist on 2012-03-11
        ("2012-03-11T00:00:00-0500", "30 2 11 Mar ?", "2013-03-11T02:30:00-0400"),
        ("2012-03-11T00:00:00-0500", "0 * * * ?", "2012-03-11T01:00:00-0500"),
        ("2012-03-11T01:00:00-0500", "0 * * * ?", "2012-03-11T03:00:00-0400"),
        ("2012-03-11T03:00:00-0400", "0 * * * ?", "2012-03-11T04:00:00-0400"),
        ("2012-03-11T01:00:00-0500", "0 1 * * ?", "2012-03-12T01:00:00-0400"),
        ("2012-03-11T00:00:00-0500", "0 2 * * ?", "2012-03-12T02:00:00-0400"),
        # fall back: 01:00-02:00 happens twice on 2012-11-04
        ("2012-11-04T00:00:00-0400", "30 2 04 Nov ?", "2012-11-04T02:30:00-0500"),
        ("2012-11-04T01:45:00-0400", "30 1 04 Nov ?", "2012-11-04T01:30:00-0500"),
        ("2012-11-04T00:00:00-0400", "0 * * * ?", "2012-11-04T01:00:00-0400"),
        ("2012-11-04T01:00:00-0400", "0 * * * ?", "2012-11-04T01:00:00-0500"),
        ("2012-11-04T01:00:00-0500", "0 * * * ?", "2012-11-04T02:00:00-0500"),
        ("2012-11-04T00:00:00-0400", "0 1 * * ?", "2012-11-04T01:00:00-0400"),
        ("2012-11-04T01:00:00-0400", "0 1 * * ?", "2012-11-04T01:00:00-0500"),
        ("2012-11-04T01:00:00-0500", "0 1 * * ?", "2012-11-05T01:00:00-0500"),
        ("2012-11-04T00:00:00-0400", "0 2 * * ?", "2012-11-04T02:00:00-0500"),
        ("2012-11-04T02:00:00-0500", "0 2 * * ?", "2012-11-05T02:00:00-0500"),
        ("2012-11-04T00:00:00-0400", "0 3 * * ?", "2012-11-04T03:00:00-0500"),
        ("2012-11-04T00:00:00-0400", "0 3 3 * ?", "2012-12-03T03:00:00-0500"),
    ],
)
def test_next_across_new_york_dst(start: str, spec: str, expected: str) -> None:
    assert next_after(spec, start, "America/New_York") == expected


def test_midnight_that_does_not_exist_in_sao_paulo() -> None:
    # 2018-11-04 00:00 did not exist in Sao Paulo (clocks went to 01:00): robfig's own cases
    assert next_after("0 9 10 * ?", "2018-10-17T05:00:00-0400", "America/Sao_Paulo") == (
        at("2018-11-10T06:00:00-0500")
        .astimezone(load_location("America/Sao_Paulo"))
        .strftime("%Y-%m-%dT%H:%M:%S%z")
    )
    assert next_after("0 9 22 * ?", "2018-02-14T05:00:00-0500", "America/Sao_Paulo") == (
        at("2018-02-22T07:00:00-0500")
        .astimezone(load_location("America/Sao_Paulo"))
        .strftime("%Y-%m-%dT%H:%M:%S%z")
    )


def test_same_schedule_in_other_zones() -> None:
    start = "2026-03-29T00:00:00+0000"  # Europe moves its clocks this night (01:00 UTC)
    assert next_after("30 2 * * *", start, "Europe/Berlin") == "2026-03-30T02:30:00+0200"
    assert next_after("0 9 * * *", start, "Asia/Tokyo") == "2026-03-30T09:00:00+0900"
    assert next_after("0 9 * * *", start, "Asia/Kolkata") == "2026-03-29T09:00:00+0530"
    assert next_after("0 0 * * *", "2026-10-25T00:00:00+0000", "Europe/London") == "2026-10-26T00:00:00+0000"


def test_a_schedule_that_never_fires_has_no_next_time() -> None:
    assert parse_standard("0 0 30 2 *").next(at("2026-01-01T00:00:00+0000")) is None
    assert parse_standard("0 0 31 4 *").next(at("2026-01-01T00:00:00+0000")) is None


def test_tz_prefix_sets_the_zone() -> None:
    schedule = parse_standard("CRON_TZ=Asia/Tokyo 0 9 * * *")
    assert schedule.next(at("2026-01-01T00:00:00+0000")) == at("2026-01-02T00:00:00+0000")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("error", "expected exactly 5 fields, found 1: [error]"),
        ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
        ("0 0 0 * * *", "expected exactly 5 fields, found 6: [0 0 0 * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("*/2/3 * * * *", "too many slashes: */2/3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("* * * foo *", 'failed to parse int from foo: strconv.Atoi: parsing "foo": invalid syntax'),
        ("@often", "unrecognized descriptor: @often"),
        ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
    ],
)
def test_robfig_error_messages(spec: str, message: str) -> None:
    with pytest.raises(CronError) as err:
        parse_standard(spec)
    assert str(err.value) == message


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == 5400 * 10**9
    assert parse_go_duration("1.5h") == 5400 * 10**9
    assert parse_go_duration("250ms") == 250 * 10**6
    with pytest.raises(CronError, match='unknown unit "d"'):
        parse_go_duration("1d")
    assert parse_standard("@every 200ms").next(at("2026-01-01T00:00:00+0000")) == at(
        "2026-01-01T00:00:01+0000"
    )


def test_time_zones_load_as_go_does() -> None:
    assert load_location("") is dt.UTC
    assert load_location("UTC") is dt.UTC
    with pytest.raises(CronError, match="unknown time zone Not/AZone"):
        load_location("Not/AZone")
