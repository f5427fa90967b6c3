import pytest

from vtts.workers.text.abbreviations_en import expand, roman_value


@pytest.mark.parametrize(("written", "spoken"), [
    ("Hello Dr. Smith.", "Hello Doctor Smith."),
    ("It is on Elm Dr. in town.", "It is on Elm Drive in town."),
    ("Visit St. Louis.", "Visit Saint Louis."),
    ("He lives on Main St. Then he left.", "He lives on Main Street. Then he left."),
    ("Go to 5th St. and turn.", "Go to 5th Street and turn."),
    ("Dr Who and Mr Bean.", "Doctor Who and Mister Bean."),
    ("Gen Z stays, Gen. Grant expands.", "Gen Z stays, General Grant expands."),
    ("Bring snacks, etc. The end.", "Bring snacks, et cetera. The end."),
    ("Arsenal vs. Chelsea, e.g. today.", "Arsenal versus Chelsea, for example today."),
    ("Acme Inc. in the city.", "Acme Incorporated in the city."),
    ("See p. 12 and No. 5, but say no.", "See page 12 and number 5, but say no."),
    ("The U.S.A. and Ph.D. holders.", "The U-S-A and P-H-D holders."),
    ("On Sat., Oct. 4 at Rm. 3.", "On Saturday, October 4 at Room 3."),
    # issue 19: document and cooking tables, spaced initials, addresses
    ("See para. 4, sect. 2 and Figs. 3-5.", "See paragraph 4, section 2 and figures 3-5."),
    ("Add the butter, approx. 1 tbsp. and salt, incl. pepper.",
     "Add the butter, approximately 1 tablespoon and salt, including pepper."),
    ("Use tbsp. measures.", "Use tablespoon measures."),
    ("C. S. Lewis and J. R. R. Tolkien wrote.", "C-S Lewis and J-R-R Tolkien wrote."),
    ("12 W Oak Ave, Reno, NV 89501", "12 West Oak Avenue, Reno, Nevada, eight nine five zero one"),
    ("1990 for the Ata ST", "1990 for the Ata ST"),
])
def test_abbreviations(written: str, spoken: str) -> None:
    assert expand(written) == spoken


@pytest.mark.parametrize(("written", "spoken"), [
    ("Henry VIII", "Henry the eighth"),
    ("Elizabeth I", "Elizabeth the first"),
    ("World War II", "World War two"),
    ("Super Bowl LVII", "Super Bowl fifty-seven"),
    ("the XXI century", "the twenty-first century"),
    ("Washington DC", "Washington DC"),
    ("Then I left", "Then I left"),
])
def test_roman_numerals(written: str, spoken: str) -> None:
    assert expand(written) == spoken


def test_roman_value_is_strict() -> None:
    assert roman_value("XIV") == 14
    assert roman_value("MCMXC") == 1990
    assert roman_value("IIII") is None
    assert roman_value("ABC") is None
