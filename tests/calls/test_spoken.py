"""Spoken forms in transcripts -> typed values (`calls.spoken`): tables of what a caller says."""

from __future__ import annotations

from datetime import date

import pytest

from calls import spoken

# A Tuesday: weekdays below are counted from it.
CALL_DAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ada at example dot com", "ada@example.com"),
        ("It's Ada at Example dot com.", "ada@example.com"),
        ("ada dot lovelace at mail dot example dot co dot uk", "ada.lovelace@mail.example.co.uk"),
        ("ada underscore l at example dot org", "ada_l@example.org"),
        ("a d a at example dot com", "ada@example.com"),
        ("it's a d a at example dot com", "ada@example.com"),
        ("write to ada@example.com please", "ada@example.com"),
        ("ADA@Example.COM", "ada@example.com"),
        # What speech-to-text usually writes: spoken "at", written domain.
        ("My email is John at gmail.com", "john@gmail.com"),
        ("Ada at example.com.", "ada@example.com"),
        ("I'm at home right now", None),
        ("at example dot com", None),
        ("ada at example", None),
    ],
)
def test_parse_email_reads_written_and_spoken_addresses(text, expected):
    assert spoken.parse_email(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("five five five one two three four", "5551234"),
        ("my number is 555-1234", "5551234"),
        ("it's 415 555 2671, thanks", "4155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("plus four four two oh seven nine four six oh double five eight", "+442079460558"),
        ("five five five, one two three, four five six seven", "5551234567"),
        ("triple five one two three four", "5551234"),
        ("I have two kids", None),
        ("one two three", None),  # too short to be a number anyone dials
        ("1234567890123456", None),  # too long
    ],
)
def test_parse_phone_reads_digits_spoken_or_written(text, expected):
    assert spoken.parse_phone(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("twenty five", 25),
        ("twenty-five", 25),
        ("one hundred and five people", 105),
        ("twelve hundred", 1200),
        ("a thousand", 1000),
        ("two million three hundred thousand", 2_300_000),
        ("about 1,200 units", 1200),
        ("I need 3 seats", 3),
        ("minus two", -2),
        ("-4 degrees", -4),
        ("three point five", 3.5),
        ("2.5 kilos", 2.5),
        ("zero", 0),
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_number_reads_words_and_digits(text, expected):
    value = spoken.parse_number(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("seven", 7),
        ("forty two people", 42),
        ("3.0", 3),
        ("three point five", None),
        ("none", None),
    ],
)
def test_parse_integer_refuses_fractions(text, expected):
    assert spoken.parse_integer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("yes please", True),
        ("Yeah, sure.", True),
        ("of course", True),
        ("absolutely", True),
        ("nope", False),
        ("No thanks.", False),
        ("I don't think so", False),
        ("not really", False),
        ("maybe later", None),
        ("", None),
    ],
)
def test_parse_boolean_reads_the_first_answer(text, expected):
    assert spoken.parse_boolean(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("today", date(2026, 12, 1)),
        ("tomorrow", date(2026, 12, 2)),
        ("the day after tomorrow", date(2026, 12, 3)),
        ("yesterday", date(2026, 11, 30)),
        ("Friday", date(2026, 12, 4)),
        ("this Friday", date(2026, 12, 4)),
        ("next Tuesday", date(2026, 12, 8)),  # the first Tuesday after the call's Tuesday
        ("in three days", date(2026, 12, 4)),
        ("in two weeks", date(2026, 12, 15)),
        ("on March 3rd", date(2027, 3, 3)),  # already past this year: next year's
        ("December 25th", date(2026, 12, 25)),
        ("the third of March", date(2027, 3, 3)),
        ("on the twenty first of January", date(2027, 1, 21)),
        ("3 March 2028", date(2028, 3, 3)),
        ("2027-01-05", date(2027, 1, 5)),
        ("February 30th", None),
        ("some day", None),
    ],
)
def test_parse_date_resolves_relative_to_the_call_day(text, expected):
    assert spoken.parse_date(text, CALL_DAY) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the premium plan please", "Premium"),
        ("Basic, no actually premium", "Premium"),  # the caller corrected themselves
        ("two basics", "Basic"),
        ("the premiumness", None),  # whole words only
        ("nothing yet", None),
    ],
)
def test_parse_enum_finds_the_value_mentioned_last(text, expected):
    assert spoken.parse_enum(text, ["Basic", "Premium"]) == expected
