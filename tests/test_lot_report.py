"""The lot report model, its impact factors, and signing/verifying it with the organisation key."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest

from certs.canonical import b64url_decode, b64url_encode, canonical_json
from certs.errors import ImpactTableError, InvalidCertificate, InvalidLotReport, KeyStoreError, SchemaError
from certs.impact import DEVICE_KINDS, Impact, load_factors, parse_factors
from certs.jws import TYP_LOT_REPORT, envelope_bytes, jwk_of, kid_of, parse_envelope, sign
from certs.keys import SigningKey, init_org_key, init_station_key
from certs.lotreport import (
    BENEFICIARIES,
    DeviceKind,
    LotReport,
    Outcome,
    is_lot_report,
    sign_lot_report,
    verify_lot_report,
)
from certs.revocation import revoke
from certs.trust import TrustStore
from tests.fixtures.certs import lots

# --- the factor table -----------------------------------------------------------------------------------


def test_default_table_covers_every_kind_with_a_source() -> None:
    table = load_factors()
    assert set(table.factors) == set(DEVICE_KINDS) == set(get_args(DeviceKind))
    for factor in table.factors.values():
        for fig in (factor.co2e, factor.waste):
            assert fig.source in table.sources and fig.year == 2022 and fig.method
            # a placeholder never counts and says so
            assert not fig.placeholder or (fig.grams == 0 and fig.method.startswith("PLACEHOLDER"))
    assert table.factor("laptop").co2e_kg == Decimal("27")
    assert table.factor("laptop").waste_kg == Decimal("0.314")
    assert table.factor("phone").co2e_kg == Decimal("24.6")
    assert any("ADEME" in c and "reconditionnés" in c for c in table.citations())


def test_impact_counts_reused_devices_per_kind_exactly() -> None:
    table = load_factors()
    impact = table.impact({"laptop": 3, "phone": 2, "tablet": 1, "server": 0})
    assert impact.devices == 6
    assert impact.co2e_g == 3 * 27_000 + 2 * 24_600
    assert impact.waste_g == 3 * 314
    assert impact.co2e_kg == Decimal("130.2") and impact.waste_kg == Decimal("0.942")
    assert list(impact.by_kind) == ["laptop", "phone", "tablet"]
    assert impact.placeholders == ("phone.waste", "tablet.co2e", "tablet.waste")
    assert Impact.from_json(json.loads(json.dumps(impact.to_json()))) == impact
    assert table.impact({}).devices == 0


@pytest.mark.parametrize("counts", [{"toaster": 1}, {"laptop": -1}, {"laptop": True}, {"laptop": 1.5}])
def test_impact_refuses_unknown_kinds_and_non_counts(counts: dict[str, object]) -> None:
    with pytest.raises(ImpactTableError):
        load_factors().impact(counts)  # type: ignore[arg-type]


def test_impact_from_json_refuses_inconsistent_totals() -> None:
    good = load_factors().impact({"laptop": 2}).to_json()
    for bad in (
        {**good, "co2e_g": good["co2e_g"] + 1},
        {**good, "by_kind": {"laptop": {**good["by_kind"]["laptop"], "co2e_g": 1}}},
        {**good, "placeholders": ["phone.waste"]},
        {**good, "extra": 1},
        {**good, "by_kind": {"toaster": good["by_kind"]["laptop"]}},
    ):
        with pytest.raises(SchemaError):
            Impact.from_json(bad)


TABLE = """
name = "Network X"
[sources.x]
citation = "Network X measurements, 2025"
"""


def _row(kind: str, co2e: str = '"10"', extra: str = "") -> str:
    fig = 'source = "x"\nyear = 2025\nmethod = "measured"\n'
    return f'[[factor]]\nkind = "{kind}"\n[factor.co2e]\nkg = {co2e}\n{fig}{extra}[factor.waste]\nkg = "1.5"\n{fig}'


def test_a_network_overrides_the_table(tmp_path: Path) -> None:
    path = tmp_path / "factors.toml"
    path.write_text(TABLE + "".join(_row(k) for k in DEVICE_KINDS), encoding="utf-8")
    table = load_factors(path)
    assert table.name == "Network X" and table.citations() == ["Network X measurements, 2025"]
    assert table.impact({"drive": 2}).waste_g == 3000


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("".join(_row(k) for k in DEVICE_KINDS[:-1]), "no row for device kind(s) drive"),
        ("".join(_row(k) for k in DEVICE_KINDS) + _row("laptop"), "laptop has two rows"),
        ("".join(_row(k) for k in DEVICE_KINDS) + _row("toaster"), "unknown device kind"),
        ("".join(_row(k, "10.5") for k in DEVICE_KINDS), "decimal string"),
        ("".join(_row(k, '"0.0001"') for k in DEVICE_KINDS), "more than 3 decimals"),
        ("".join(_row(k, '"-1"') for k in DEVICE_KINDS), "between 0"),
        ("".join(_row(k, '"NaN"') for k in DEVICE_KINDS), "between 0"),
        ("".join(_row(k, '"1e9"') for k in DEVICE_KINDS), "between 0"),
        ("".join(_row(k, '"5"', "placeholder = true\n") for k in DEVICE_KINDS), "placeholder"),
        ("".join(_row(k).replace('source = "x"', 'source = "y"', 1) for k in DEVICE_KINDS), "not a key of"),
        ("".join(_row(k).replace("year = 2025", 'year = "2025"', 1) for k in DEVICE_KINDS), "must be a year"),
        ("".join(_row(k).replace('method = "measured"', 'method = ""', 1) for k in DEVICE_KINDS), "method"),
    ],
)
def test_a_bad_table_is_refused_with_a_reason(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "factors.toml"
    path.write_text(TABLE + rows, encoding="utf-8")
    with pytest.raises(ImpactTableError) as exc:
        load_factors(path)
    assert message in exc.value.message and str(path) in exc.value.message


def test_an_unreadable_table_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ImpactTableError):
        load_factors(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_bytes(b"name = \xff")
    with pytest.raises(ImpactTableError):
        load_factors(tmp_path / "bad.toml")
    with pytest.raises(ImpactTableError):
        parse_factors([])


# --- the model -----------------------------------------------------------------------------------------


def test_report_round_trips_and_counts() -> None:
    r = lots.report()
    assert LotReport.from_json(json.loads(json.dumps(r.to_json()))) == r
    counts = r.counts()
    assert counts["received"] == 3 and counts["data_cleared"] == 3 and counts["reused"] == 2
    assert counts["recycled"] == 1 and counts["flagged_drives"] == 0
    assert r.impact.impact.co2e_g == 27_000 + 24_600
    assert len(r.record_ids()) == 3
    assert "contact" not in json.dumps(r.to_json())


def test_data_cleared_means_every_drive_proven() -> None:
    failed = lots.drive(7, result="failed")
    assert not failed.cleared and failed.level == "none"
    destroyed = lots.drive(8, result="failed", destroyed=True)
    assert destroyed.cleared
    none = lots.drive(9, result=None)
    assert not none.cleared
    base = lots.device(1)
    with pytest.raises(InvalidLotReport, match="data_cleared"):
        replace(base, drives=(lots.drive(1), failed))  # data_cleared still True
    ok = replace(base, drives=(lots.drive(1), failed), data_cleared=False)
    assert ok.flagged_drives == [failed]
    with pytest.raises(InvalidLotReport, match="no drive"):
        replace(base, drives=())  # nothing proves a device without drives is cleared
    assert not replace(base, drives=(), data_cleared=False).data_cleared


@pytest.mark.parametrize(
    "change",
    [
        {"level": "none"},  # verified but no level
        {"result": "failed"},  # a failure report with a level
        {"certificate_sha256": None},  # half a certificate
        {"certificate_id": "not-a-uuid"},
        {"certificate_sha256": "AB" * 32},
        {"date": "2026-04-02"},
        {"destruction_id": "5d1c3a1e-0000-4000-8000-000000000000"},  # half a destruction
        {"serial": "x" * 513},
        {"model": "x" * 513},
    ],
)
def test_a_drive_that_contradicts_itself_cannot_be_built(change: dict[str, object]) -> None:
    with pytest.raises(InvalidCertificate):
        replace(lots.drive(1), **change)  # type: ignore[arg-type]


def test_outcomes_name_a_category_never_a_person() -> None:
    assert Outcome("reused", "student", "2026-04-20").detail in BENEFICIARIES
    with pytest.raises(InvalidLotReport, match="never a person"):
        Outcome("reused", "Jean Dupont", "2026-04-20")
    with pytest.raises(InvalidLotReport, match="WEEE"):
        Outcome("recycled", " ", "2026-04-20")
    with pytest.raises(InvalidLotReport):
        Outcome("given", "", "2026-04-20")  # type: ignore[arg-type]
    with pytest.raises(InvalidLotReport):
        Outcome("sold", "", "2026-02-30")


def test_report_level_rules() -> None:
    base = lots.report()
    d = base.devices
    with pytest.raises(InvalidLotReport, match="impact counts"):
        replace(base, devices=(*d, lots.device(4)))  # one more reused laptop, impact not recounted
    with pytest.raises(InvalidLotReport, match="listed twice"):
        lots.with_devices(base, (*d, replace(lots.device(4), asset=d[0].asset)))
    with pytest.raises(InvalidLotReport, match="two drives"):
        lots.with_devices(base, (*d, lots.device(4, drives=(lots.drive(1),))))
    with pytest.raises(InvalidLotReport, match="outside the lot"):
        lots.with_devices(base, (replace(d[0], outcome=Outcome("sold", "", "2026-01-01")),))
    with pytest.raises(InvalidLotReport, match="URL"):
        replace(base, donor_page="javascript:alert(1)")
    with pytest.raises(InvalidLotReport, match="reference"):
        replace(base, lot=replace(base.lot, reference="bad ref"))
    with pytest.raises(InvalidLotReport, match="closed before"):
        replace(base, lot=replace(base.lot, closed="2026-03-01"))
    with pytest.raises(InvalidLotReport, match="before the lot"):
        replace(base, issued_at="2026-03-01T00:00:00Z")
    assert replace(base, donor_page=None, lot=replace(base.lot, closed=None)).lot.closed is None


def test_from_json_is_strict() -> None:
    good = lots.report().to_json()
    bad_docs = [
        {**good, "contact": "donor@example.org"},
        {k: v for k, v in good.items() if k != "lot"},
        {**good, "schema": "tabula.lot-report/2"},
        {**good, "devices": [{**good["devices"][0], "kind": "toaster"}]},
        {**good, "devices": "none"},
        {**good, "lot": {**good["lot"], "donor_kind": "person"}},
        [],
    ]
    for doc in bad_docs:
        with pytest.raises(SchemaError):
            LotReport.from_json(doc)


# --- signing and the signer check -------------------------------------------------------------------------


def _org(tmp_path: Path, name: str = "org") -> tuple[SigningKey, TrustStore]:
    org = init_org_key(tmp_path / name, "Atelier Réemploi")
    trust = TrustStore()
    trust.add_organisation_key(org.public, "org.pem")
    return org, trust


def test_sign_and_verify(tmp_path: Path) -> None:
    org, trust = _org(tmp_path)
    r = lots.report(kid=org.kid)
    data = sign_lot_report(r, org)
    env = parse_envelope(data)
    assert env.typ == TYP_LOT_REPORT == "tabula-lot-report+json" and is_lot_report(data)
    assert set(json.loads(b64url_decode(env.protected))) == {"alg", "typ", "kid", "jwk"}
    v = verify_lot_report(data, trust, "r.json")
    assert v.ok, v.problems
    assert v.report == r and v.digest == env.digest
    assert "organisation key" in v.trust and "lot 2026-03/MAIRIE-VLB" in v.summary()
    assert v.to_json()["counts"]["reused"] == 2


def test_only_the_named_organisation_key_signs(tmp_path: Path) -> None:
    org, _ = _org(tmp_path)
    station = init_station_key(tmp_path / "st", "bench-1")
    with pytest.raises(KeyStoreError):
        sign_lot_report(lots.report(kid=station.kid), station)
    with pytest.raises(InvalidLotReport, match="names organisation key"):
        sign_lot_report(lots.report(), org)


def test_signer_must_be_a_trusted_unrevoked_organisation_key(tmp_path: Path) -> None:
    org, trust = _org(tmp_path)
    data = sign_lot_report(lots.report(kid=org.kid), org)
    assert verify_lot_report(data, TrustStore()).reason == "unknown_key"
    station = init_station_key(tmp_path / "st", "bench-1")
    st_trust = TrustStore()
    st_trust.add_station_key(station.public, "bench-1", "st.pem")
    forged = envelope_bytes(sign(lots.report(kid=station.kid).to_json(), station.private, TYP_LOT_REPORT))
    assert verify_lot_report(forged, st_trust).reason == "key_role"
    # revoked before the report: refused; revoked after: valid with a note
    before = revoke(org, org.kid, reason="key_compromise", at=_t("2026-04-01"))
    trust.add_revocation_list(envelope_bytes(before), "rev.json")
    assert verify_lot_report(data, trust).reason == "revoked_key"
    _, trust2 = _org(tmp_path, "org2")
    later = TrustStore()
    later.add_organisation_key(org.public, "org.pem")
    later.add_revocation_list(
        envelope_bytes(revoke(org, org.kid, reason="superseded", at=_t("2026-06-01"))), "r"
    )
    v = verify_lot_report(data, later)
    assert v.ok and "revoked" in v.notes[0]
    assert verify_lot_report(data, trust2).reason == "unknown_key"


def _t(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_tampering_and_other_types_are_refused(tmp_path: Path) -> None:
    org, trust = _org(tmp_path)
    data = sign_lot_report(lots.report(kid=org.kid), org)
    obj = json.loads(data)
    obj["signature"] = obj["signature"][:-2] + ("AA" if obj["signature"][-2:] != "AA" else "BA")
    assert verify_lot_report(json.dumps(obj).encode(), trust).reason in ("bad_signature", "malformed")
    assert verify_lot_report(b"{}", trust).reason == "malformed"
    assert verify_lot_report(b"\xff" * 10, trust).reason == "malformed"
    # a non-canonical payload signed by the right key is a schema error
    payload = json.dumps(lots.report(kid=org.kid).to_json(), indent=1).encode()
    header = {"alg": "EdDSA", "typ": TYP_LOT_REPORT, "kid": kid_of(org.public), "jwk": jwk_of(org.public)}
    p = b64url_encode(canonical_json(header))
    b = b64url_encode(payload)
    s = b64url_encode(org.private.sign(f"{p}.{b}".encode()))
    v = verify_lot_report(json.dumps({"protected": p, "payload": b, "signature": s}).encode(), trust)
    assert v.reason == "schema_error" and "canonical" in v.problems[0][1]


def test_a_report_too_large_to_verify_is_not_signed(tmp_path: Path) -> None:
    org, _ = _org(tmp_path)
    devices = tuple(
        lots.device(n, drives=tuple(lots.drive(n * 100 + i) for i in range(12)), outcome=None)
        for n in range(1, 1101)
    )
    with pytest.raises(InvalidLotReport, match="split the lot"):
        sign_lot_report(lots.report(devices, kid=org.kid), org)
    with pytest.raises(InvalidLotReport, match="at most 2000"):
        lots.report(tuple(lots.device(n, drives=(), outcome=None) for n in range(1, 2002)))
