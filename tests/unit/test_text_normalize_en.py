"""The English normalizer's output, pinned per rule family."""

import time

import pytest

from tests.deadline import within
from vtts.workers.text.normalize_en import normalize

CASES = {
    "cardinals": [
        ("The stadium holds 45,000 people.", "The stadium holds forty-five thousand people."),
        ("We sold 1,234,567 copies.", "We sold one million two hundred thirty-four thousand five hundred sixty-seven "
                                      "copies."),
    ],
    "ordinals": [("The 21st floor and the 3rd time.", "The twenty-first floor and the third time.")],
    "decimals": [("Pi is about 3.14159.", "Pi is about three point one four one five nine.")],
    "fractions": [
        ("Add 1/2 cup and 2 3/4 spoons.", "Add one half cup and two and three quarters spoons."),
        ("About ½ of it, 1½ more.", "About one half of it, one and a half more."),
    ],
    "negatives": [("It dropped to -12 overnight.", "It dropped to minus twelve overnight.")],
    "ranges and ratios": [("Read pages 15-20; it won 3-1 on a 16:9 screen.",
                           "Read pages fifteen to twenty; it won three to one on a sixteen to nine screen.")],
    "currency": [
        ("It costs $5.50.", "It costs five dollars and fifty cents."),
        ("Only $1 or $0.99 or 50¢.", "Only one dollar or ninety-nine cents or fifty cents."),
        ("They raised $2.5M and $3 billion.", "They raised two point five million dollars and three billion dollars."),
        ("€40, £3.20, ¥500, ₩5000 and 40€.", "forty euros, three pounds and twenty pence, five hundred yen, "
                                           "five thousand won and forty euros."),
        ("From $5 to $10.", "From five to ten dollars."),
    ],
    "percentages": [("It rose 3.5% then -2%.", "It rose three point five percent then minus two percent.")],
    "dates": [
        ("On 03/04/2025.", "On March fourth, twenty twenty-five."),
        ("On 31/12/2025.", "On the thirty-first of December, twenty twenty-five."),
        ("Due 2026-01-20.", "Due January twentieth, twenty twenty-six."),
        ("Met on Jan. 5th, 2026.", "Met on January fifth, twenty twenty-six."),
        ("Dated 5 March 2021.", "Dated the fifth of March, twenty twenty-one."),
        ("Opened in Oct. 1998.", "Opened in October nineteen ninety-eight."),
    ],
    "times": [
        ("At 5:30 pm.", "At five thirty P-M."),
        ("At 17:45 and 6:05 am.", "At seventeen forty-five and six oh five A-M."),
        ("Lunch is at 12:00, then 9am.", "Lunch is at twelve o'clock, then nine A-M."),
    ],
    "years": [
        ("Built in 1889, moved in 2005, by 2030.", "Built in eighteen eighty-nine, moved in two thousand five, "
                                                   "by twenty thirty."),
        ("He has 1984 followers.", "He has one thousand nine hundred eighty-four followers."),
        ("The 1960s and the '80s.", "The nineteen sixties and the eighties."),
        ("From 1914 to 1918, and 2024-2025.", "From nineteen fourteen to nineteen eighteen, and twenty twenty-four "
                                              "to twenty twenty-five."),
    ],
    "phone numbers and codes": [
        ("Call (555) 123-4567.", "Call five five five, one two three, four five six seven."),
        ("Or +44 20 7946 0958.", "Or plus four four, two zero, seven nine four six, zero nine five eight."),
        ("Enter PIN 7302, ext. 204.", "Enter PIN seven three zero two, extension two zero four."),
    ],
    "units": [
        ("It weighs 5 kg at 60 km/h.", "It weighs five kilograms at sixty kilometers per hour."),
        ("It was 25°C, or 77°F, and -5°C.", "It was twenty-five degrees Celsius, or seventy-seven degrees "
                                            "Fahrenheit, and minus five degrees Celsius."),
        ("16 GB, 1 L, 80 mph, 3.5 GHz.", "sixteen gigabytes, one liter, eighty miles per hour, three point five "
                                         "gigahertz."),
        ("He is 6'2\" tall.", "He is six feet two inches tall."),
    ],
    "multiplication": [("It is 2x faster, 4 × 5 and 1920x1080.",
                        "It is two times faster, four times five and one thousand nine hundred twenty by one "
                        "thousand eighty.")],
    "abbreviations and titles": [
        ("Dr. Smith met Mr. and Mrs. Brown.", "Doctor Smith met Mister and Missus Brown."),
        ("Lt. Col. Jones and Prof. Lee.", "Lieutenant Colonel Jones and Professor Lee."),
        ("Visit St. Louis on Main St. today.", "Visit Saint Louis on Main Street today."),
        ("Meet in Rm. 12, approx. at noon, etc.", "Meet in Room twelve, approximately at noon, et cetera."),
        ("See Fig. 3 and No. 5.", "See figure three and number five."),
        ("I was in the U.S. Then I left.", "I was in the U-S. Then I left."),
        ("The meeting on Mon., Nov. 3 and Sept. 12.", "The meeting on Monday, November third and September "
                                                      "twelfth."),
    ],
    "roman numerals": [
        ("Henry VIII and Louis XIV.", "Henry the eighth and Louis the fourteenth."),
        ("World War II, Chapter IV and Super Bowl LVII.", "World War two, Chapter four and Super Bowl fifty-seven."),
        ("The XVI century.", "The sixteenth century."),
        ("Washington DC, Then I left.", "Washington DC, Then I left."),
    ],
    "web": [
        ("Visit www.example.com/docs now.", "Visit W-W-W dot example dot com slash docs now."),
        ("Mail j.smith@example.org today.", "Mail j dot smith at example dot org today."),
        ("See https://docs.python.org.", "See docs dot python dot org."),
    ],
    "symbols": [
        ("Salt & pepper, 2 + 2 = 4, C++.", "Salt and pepper, two plus two equals four, C plus plus."),
        ("Meet @ home, #1 and #blessed, ~20 points.", "Meet at home, number one and hashtag blessed, about twenty "
                                                      "points."),
    ],
    "emoji and markdown": [
        ("I love **bold** ideas 🚀 and `code` ☕.", "I love bold ideas and code."),
        ("# Title\n- first item\n- second item", "Title.\nfirst item.\nsecond item."),
        ("A [link](https://example.com) here.", "A link here."),
    ],
    "plain prose": [("The train leaves the station every morning.", "The train leaves the station every morning.")],
    # issue 19: one case per rule family, written here (not taken from the public cases)
    "prefixed and composite units": [
        ("The probe draws 40 mA at 3.3 kV; dose 12 mg/kg; 9.8 m/s².",
         "The probe draws forty milliamps at three point three kilovolts; dose twelve milligrams per kilogram; nine "
         "point eight meters per second squared."),
        ("They laid 2.5 million km of cable, 20KG boxes, 100 Mbps.",
         "They laid two point five million kilometers of cable, twenty kilograms boxes, one hundred megabits per "
         "second."),
    ],
    "dimensions": [("A 4x6 ft rug and a 2.5 x 3 m room.",
                    "A four by six feet rug and a two point five by three meters room."),
                   ("He is 6 ft 2 in.", "He is six feet two inches."),
                   ("A 15 cm x 20 cm tile at 60 fps.", "A fifteen centimeters by twenty centimeters tile at sixty "
                                                      "frames per second.")],
    "cooking abbreviations": [("Add 2 tbsp. butter and 1 doz. eggs, 3 oz. cheese.",
                               "Add two tablespoons butter and one dozen eggs, three ounces cheese.")],
    "codes and flight numbers": [("Flight BA2490 boards at gate C7.",
                                  "Flight B-A two four nine zero boards at gate C seven."),
                                 ("My flight is DL 405; the booking code is QZ8M2 for seat 22F.",
                                  "My flight is D-L four zero five; the booking code is Q-Z eight M two for seat "
                                  "twenty-two F.")],
    "dates in any case and order": [
        ("Born on july 4 2026, 4 JUL 2026, Sept. 3 and 2026/07/04.",
         "Born on July fourth, twenty twenty-six, the fourth of July, twenty twenty-six, September third and July "
         "fourth, twenty twenty-six."),
        ("Due 01/07/98.", "Due January seventh, ninety-eight."),
    ],
    "fiscal quarters": [("Sales rose in 2Q24.", "Sales rose in the second quarter of twenty-four.")],
    "decade and year ranges": [("From the 1960s-1980s, prices of 1960-80.",
                                "From the nineteen sixties to nineteen eighties, prices of nineteen sixty to eighty.")],
    "times with zones, seconds and ranges": [
        ("Open 9-5pm EST; the log says 14:10:30.",
         "Open nine to five P-M E-S-T; the log says fourteen hours ten minutes and thirty seconds."),
        ("We met 4:00 am - 8:12 pm at 1:59 p.m. e.s.t. on air.",
         "We met four A-M to eight twelve P-M at one fifty-nine P-M E-S-T on air."),
    ],
    "telephone extensions, SSN and IP addresses": [
        ("Call (123)-123-5678-1111, SSN 123-45-6789, ping 10.0.0.254.",
         "Call one two three, one two three, five six seven eight, one one one one, SSN one two three, four five, "
         "six seven eight nine, ping one zero dot zero dot zero dot two five four."),
        ("Dial +44 (0)20 7946 0958 or 800-555-1234 x 12.",
         "Dial plus four four, two zero, seven nine four six, zero nine five eight or eight zero zero, five five "
         "five, one two three four, extension one two."),
    ],
    "money: trailing zeros, per unit, full ranges": [
        ("Fees: $20.500, $350/yr and $50.00-$100.00.",
         "Fees: twenty dollars and fifty cents, three hundred fifty dollars per year and fifty dollars to one hundred "
         "dollars."),
    ],
    "mis-suffixed ordinals and fractions with suffix": [("Not 4rd but 4th; take 1/4th.",
                                                         "Not four rd but fourth; take one quarter.")],
    "equations": [("So 1-2=5.", "So one minus two equals five.")],
    "addresses": [("708 N 1st St, Santa, FL, 95051",
                   "seven oh eight North first Street, Santa, Florida, nine five zero five one"),
                  ("Lived at 1428 Elm St.", "Lived at fourteen twenty-eight Elm Street.")],
    "lone symbols and e-mail paths": [("Pay in $ or €; mail a&b@x.com/path-1",
                                       "Pay in dollar or euro; mail a ampersand b at x dot com slash path dash one")],
    "very large grouped cardinals": [("It is 1,000,000,000,000,000,001.",
                                      "It is one quintillion one.")],
}


@pytest.mark.parametrize(("written", "spoken"), [case for cases in CASES.values() for case in cases],
                         ids=[f"{family}-{i}" for family, cases in CASES.items() for i in range(len(cases))])
def test_normalize(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_locale_sets_the_date_order() -> None:
    assert normalize("On 03/04/2025.", "en-GB") == "On the third of April, twenty twenty-five."
    assert normalize("On 03/04/2025.", "en-US") == "On March fourth, twenty twenty-five."


def test_normalization_is_fast() -> None:
    text = " ".join(w for cases in CASES.values() for w, _ in cases) * 3
    normalize(text)
    start = time.perf_counter()
    for _ in range(5):
        normalize(text)
    per_char_us = (time.perf_counter() - start) / 5 / len(text) * 1e6
    assert per_char_us < 20, f"{per_char_us:.1f} µs per character"


def test_long_digit_runs_are_linear() -> None:
    """The vulgar-fraction rule rescanned a digit run from every digit (quadratic: 12 s at 16 K digits)."""
    with within(2.0, "normalize()"):
        spoken = normalize("1" * 16384)
    assert spoken.split() == ["one"] * 16384
