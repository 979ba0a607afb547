"""core.fields.Money: Decimal to 2 places, a string in JSON, optional bounds."""

from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from core.fields import MAX_MONEY, Money


class Amounts(Schema):
    any = Money()
    price = Money(non_negative=True)
    capped = Money(minimum=1, maximum=10)


def test_money_loads_decimal_to_the_fen_half_up_and_dumps_a_string():
    assert Amounts().load({"any": "-2.005", "price": "0.125"}) == {"any": Decimal("-2.01"),
                                                                    "price": Decimal("0.13")}
    assert Amounts().dump({"any": Decimal("3.1"), "price": Decimal("0")}) == {"any": "3.10", "price": "0.00"}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price", "-0.01", "Must be between 0 and 999999999999.99."),
    ("price", str(MAX_MONEY + 1), "Must be between 0 and 999999999999.99."),
    ("capped", "0.99", "Must be between 1 and 10."),
    ("any", "1e400", None),
])
def test_money_refuses_out_of_range_and_non_decimal_input(field, value, message):
    with pytest.raises(ValidationError) as exc:
        Amounts().load({field: value})
    assert field in exc.value.messages
    if message:
        assert exc.value.messages[field] == [message]
