"""The checklist's Fakers load only the providers its makers use: every maker works in every locale, and
makes what a Faker with every provider makes from the same seed (a run's data does not change with it)."""

from __future__ import annotations

import pytest
from faker import Faker

from conformance import strategies
from conformance.strategies import LOCALES, PROVIDERS


@pytest.mark.parametrize("locale", LOCALES)
def test_every_maker_makes_what_a_faker_with_every_provider_makes(locale: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    counter = iter(range(10**6))
    monkeypatch.setattr(strategies, "next_unique", lambda: next(counter))
    full = {name: Faker(name) for name in LOCALES}
    makers = strategies._makers.__wrapped__  # not the run's cached ones: these are made for each set of Fakers
    for seed in range(5):
        counter = iter(range(10**6))  # the unique numbers as one run starts them, for both sets of Fakers
        made = {}
        for name, make in makers(locale).items():
            strategies._fakers[locale].seed_instance(seed)
            strategies._fakers["nl_NL"].seed_instance(seed)  # the VAT number is always Dutch
            made[name] = make()
        with monkeypatch.context() as patch:
            patch.setattr(strategies, "_fakers", full)
            counter = iter(range(10**6))
            for name, make in makers(locale).items():
                full[locale].seed_instance(seed)
                full["nl_NL"].seed_instance(seed)
                assert make() == made[name], (locale, name, seed)
    assert len(PROVIDERS) < 12  # not every provider Faker has
