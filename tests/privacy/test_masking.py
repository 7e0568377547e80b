"""privacy.masking: the masked view of a record, rule by rule and profile by profile."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.masking import DEFAULT_BY_KIND, MASKING_VERSION, PROFILES, apply_rule, mask_payload

# Catalogue field kinds (ledger.rules.catalogue.FIELD_KINDS), spelled out so a new kind without a default fails here.
FIELD_KINDS = {"text", "integer", "amount", "date", "month", "boolean", "identifier", "series"}
PARTIAL_RULES = sorted({rule for profile in [DEFAULT_BY_KIND, *PROFILES.values()] for rule in profile.values() if rule.startswith("partial:")})


# --- rules, known answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "masked"),
    [
        ("partial:2,2", "鲁A1B234", "鲁A***34"),
        ("partial:2,2", "abcde", "ab*de"),
        ("partial:2,2", "abcd", "****"),  # nothing between the ends: all hidden
        ("partial:2,2", "a", "*"),
        ("partial:2,2", "", ""),
        ("partial:4,0", "370102-2024-00012", "3701*************"),
        ("partial:4,2", "92370102MA1234567X", "9237************7X"),
        ("prefix:6", "Jinan Central Hospital", "Jinan …"),
        ("prefix:6", "Jinan", "Jinan"),  # short enough: as is
        ("prefix:1", "王小明", "王…"),
        ("month", "2024-11-02", "2024-11"),
        ("keep", 3, 3),
        ("keep", True, True),
        ("bucket:1000000", 1_234_567, {"from": 1_000_000, "to": 2_000_000}),
        ("bucket:1000000", 1_000_000, {"from": 1_000_000, "to": 2_000_000}),
        ("bucket:1000000", 999_999, {"from": 0, "to": 1_000_000}),
        ("bucket:50000", 0, {"from": 0, "to": 50_000}),
        (
            "series:50000",
            [{"month": "2025-05", "amount": 123_456}, {"month": "2025-06", "amount": 50_000}],
            [{"month": "2025-05", "amount": {"from": 100_000, "to": 150_000}}, {"month": "2025-06", "amount": {"from": 50_000, "to": 100_000}}],
        ),
    ],
)
def test_rules(rule, value, masked):
    assert apply_rule(rule, value) == masked


def test_an_unknown_rule_is_refused_without_echoing_the_value():
    with pytest.raises(ValueError, match="hash:sha256") as raised:
        apply_rule("hash:sha256", "370102199001011234")
    assert "370102199001011234" not in str(raised.value)


# --- profiles and defaults ------------------------------------------------------------------


def test_every_catalogue_kind_has_a_default_rule():
    assert set(DEFAULT_BY_KIND) == FIELD_KINDS


def test_the_death_registration_profile():
    kinds = {"date_of_death": "date", "place": "text", "certificate_no": "identifier"}
    payload = {"date_of_death": "2024-11-02", "place": "Jinan Central Hospital", "certificate_no": "370102-2024-00012"}
    assert mask_payload("civil.death_registration", kinds, payload) == {
        "date_of_death": "2024-11",
        "place": "Jinan …",
        "certificate_no": "3701*************",
    }


def test_the_vehicle_profile_masks_the_plate_and_keeps_the_rest():
    kinds = {"plate": "identifier", "vehicle_type": "text", "brand": "text", "registered": "date", "status": "text"}
    payload = {"plate": "鲁A1B234", "vehicle_type": "small car", "brand": "BYD", "registered": "2021-03-04", "status": "normal"}
    assert mask_payload("vehicle.registration", kinds, payload) == {
        "plate": "鲁A***34",
        "vehicle_type": "small car",
        "brand": "BYD",
        "registered": "2021-03",
        "status": "normal",
    }


def test_a_type_without_a_profile_is_masked_by_field_kind():
    kinds = {
        "taxpayer": "identifier",
        "employer": "text",
        "annual": "amount",
        "dependants": "integer",
        "retired": "boolean",
        "born": "date",
        "filed": "month",
        "monthly": "series",
    }
    payload = {
        "taxpayer": "370102199001011234",
        "employer": "Jinan Steel",
        "annual": 24_000_000,
        "dependants": 2,
        "retired": False,
        "born": "1990-01-01",
        "filed": "2025-03",
        "monthly": [{"month": "2025-05", "amount": 200_000}],
    }
    assert "tax.profile" not in PROFILES
    assert mask_payload("tax.profile", kinds, payload) == {
        "taxpayer": "37**************34",
        "employer": "J…",
        "annual": {"from": 24_000_000, "to": 25_000_000},  # 10 000-yuan ranges
        "dependants": 2,
        "retired": False,
        "born": "1990-01",
        "filed": "2025-03",
        "monthly": [{"month": "2025-05", "amount": {"from": 200_000, "to": 300_000}}],  # 1 000-yuan ranges
    }


def test_a_field_a_profile_does_not_name_falls_back_to_its_kind():
    kinds = {"plate": "identifier", "owner_id": "identifier"}
    masked = mask_payload("vehicle.registration", kinds, {"plate": "鲁A1B234", "owner_id": "370102199001011234"})
    assert masked == {"plate": "鲁A***34", "owner_id": "37**************34"}


def test_every_profile_rule_is_a_known_rule():
    samples = {"keep": 1, "partial": "abcdefgh", "prefix": "abcdefgh", "month": "2025-01-02", "bucket": 12_345, "series": [{"month": "2025-01", "amount": 1}]}
    for profile in [DEFAULT_BY_KIND, *PROFILES.values()]:
        for rule in profile.values():
            apply_rule(rule, samples[rule.partition(":")[0]])
    assert MASKING_VERSION == "mask-v1"


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARTIAL_RULES), st.text(min_size=1, max_size=40))
def test_a_partial_rule_never_reveals_the_whole_value(rule, value):
    head, tail = (int(n) for n in rule.partition(":")[2].split(","))
    masked = apply_rule(rule, value)
    assert len(masked) == len(value)
    shown = [i for i in range(len(value)) if i < head or i >= len(value) - tail] if len(value) > head + tail else []
    assert len(shown) < len(value)  # at least one character is always hidden
    for i, char in enumerate(masked):
        assert char == (value[i] if i in shown else "*")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters="*"), min_size=1, max_size=30))
def test_plates_and_identifiers_are_never_released_unmasked(value):
    plates = {name: "identifier" for name in ("plate", "certificate_no", "licence_no")}
    for data_type, fields in [("vehicle.registration", {"plate": "identifier"}), ("traffic.violation", {"plate": "identifier"}), ("x.unprofiled", {"id": "identifier"})]:
        name = next(iter(fields))
        assert mask_payload(data_type, fields, {name: value})[name] != value
    assert mask_payload("civil.death_registration", plates, {"certificate_no": value})["certificate_no"] != value
    assert mask_payload("market.business_licence", plates, {"licence_no": value})["licence_no"] != value


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**63), st.sampled_from([1, 100, 50_000, 1_000_000, 10_000_000]))
def test_a_bucket_holds_its_amount(amount, width):
    bucket = apply_rule(f"bucket:{width}", amount)
    assert bucket["from"] <= amount < bucket["to"]
    assert bucket["to"] - bucket["from"] == width
    assert bucket["from"] % width == 0


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=30), st.integers(1, 10))
def test_a_prefix_shows_at_most_n_characters(value, width):
    masked = apply_rule(f"prefix:{width}", value)
    if len(value) <= width:
        assert masked == value
    else:
        assert masked == value[:width] + "…"


_RULE_KINDS = {
    "partial": {"text", "identifier"},
    "prefix": {"text", "identifier"},
    "month": {"date"},
    "bucket": {"amount"},
    "series": {"series"},
}


def test_every_profile_rule_fits_its_fields_kind_in_the_development_catalogue():
    """A rule applied to a field of another kind would fail a release at run time (a 500): caught here instead."""
    from node.devnet import DEV_CATALOGUE

    kinds = {entry["type"]: {field["name"]: field["kind"] for field in entry["fields"]} for entry in DEV_CATALOGUE}
    assert set(PROFILES) == set(kinds)
    for data_type, profile in PROFILES.items():
        assert set(profile) == set(kinds[data_type]), data_type
        for field, rule in profile.items():
            name = rule.split(":")[0]
            assert name == "keep" or kinds[data_type][field] in _RULE_KINDS[name], (data_type, field, rule)
    for kind, rule in DEFAULT_BY_KIND.items():
        name = rule.split(":")[0]
        assert name == "keep" or kind in _RULE_KINDS[name], (kind, rule)
