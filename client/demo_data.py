"""Synthetic but realistic government records for the demo: five Jinan residents and what six agencies hold about them.

Every payload follows the development catalogue (``node.devnet.DEV_CATALOGUE``):
dates are ``YYYY-MM-DD``, amounts are integers in fen, monthly figures are
series of ``{"month", "amount"}``. Dates are placed relative to ``today`` so a
death registration is always recent and the 24 monthly figures always end
last month; the numbers come from a seeded generator, so a run is reproducible
for a given day. Zhang Wei's vehicle registration carries one planted error
(the brand), which the demo's correction scenario fixes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

__all__ = [
    "BEIJING",
    "CAST",
    "CHEN_JING",
    "LIU_YANG",
    "LI_NA",
    "Person",
    "Publication",
    "RIGHT_BRAND",
    "WANG_XIUYING",
    "WRONG_BRAND",
    "ZHANG_WEI",
    "agency_records",
    "death_registration",
    "describe",
    "yuan",
]

BEIJING = timezone(timedelta(hours=8))
WRONG_BRAND = "大众 朗逸"  # what the vehicle registry recorded (a Volkswagen Lavida)…
RIGHT_BRAND = "比亚迪 秦PLUS"  # …and what Zhang Wei actually drives (a BYD Qin PLUS)
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O, as on Chinese plates


@dataclass(frozen=True)
class Person:
    name: str
    pinyin: str
    part: str

    def __str__(self) -> str:
        return f"{self.pinyin} {self.name}"

    @property
    def handle(self) -> str:
        """A file-name-safe handle: ``zhang-wei``."""
        return self.pinyin.lower().replace(" ", "-")


ZHANG_WEI = Person("张伟", "Zhang Wei", "car owner, Taiping policyholder")
WANG_XIUYING = Person("王秀英", "Wang Xiuying", "life-insurance policyholder (dies)")
LI_NA = Person("李娜", "Li Na", "her daughter and beneficiary")
LIU_YANG = Person("刘洋", "Liu Yang", "runs a small restaurant, Qilu Bank customer")
CHEN_JING = Person("陈静", "Chen Jing", "files a commercial health-insurance claim")
CAST = (ZHANG_WEI, WANG_XIUYING, LI_NA, LIU_YANG, CHEN_JING)


@dataclass(frozen=True)
class Publication:
    """One record an agency publishes: who publishes it, about whom, and the date the data describes."""

    provider: str
    subject: Person
    data_type: str
    payload: dict[str, Any]
    as_of: date

    @property
    def as_of_ms(self) -> int:
        """Midnight (Beijing time) of the date the data describes, as the ledger's ``as_of``."""
        return int(datetime.combine(self.as_of, time(), BEIJING).timestamp() * 1000)


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def agency_records(today: date, rng: random.Random) -> list[Publication]:
    """What the agencies hold before the story starts (the death registration comes later)."""
    plate = f"鲁A{rng.randint(0, 9)}{rng.choice(_LETTERS)}{rng.randint(100, 999)}"
    months = _last_months(today, 24)
    speeding = today - timedelta(days=rng.randint(40, 120))
    return [
        Publication("jinan-psb", ZHANG_WEI, "vehicle.registration",
                    {"plate": plate, "vehicle_type": "small car", "brand": WRONG_BRAND, "registered": "2021-03-04",
                     "status": "normal"}, date(2021, 3, 4)),
        Publication("jinan-psb", ZHANG_WEI, "traffic.violation",
                    {"plate": plate, "count": 2, "points": 3, "fines": 30_000,
                     "latest": f"{speeding.isoformat()} speeding 10-20% on 经十路 (Jingshi Rd), 历下区"}, speeding),
        Publication("jinan-medins", CHEN_JING, "medical.claims",
                    _medical_year(today.year - 1, rng), date(today.year - 1, 12, 31)),
        Publication("jinan-hpf", LIU_YANG, "housing_fund.contributions",
                    {"employer": "济南市历下区刘记把子肉店", "monthly": [{"month": m, "amount": 206_400} for m in months]},
                    _month_end(months[-1])),
        Publication("jinan-tax", LIU_YANG, "tax.payments",
                    {"taxpayer": "济南市历下区刘记把子肉店",
                     "monthly": [{"month": m, "amount": rng.randint(88_000, 208_000)} for m in months]},
                    _month_end(months[-1])),
        Publication("jinan-amr", LIU_YANG, "market.business_licence",
                    {"licence_no": f"92370102MA{rng.randint(0, 9_999_999):07d}{rng.choice(_LETTERS)}",
                     "name": "济南市历下区刘记把子肉店", "registered": "2019-06-12", "capital": 50_000_000,
                     "status": "in business"}, _month_end(months[-1])),
    ]


def death_registration(today: date, rng: random.Random) -> Publication:
    died = today - timedelta(days=9)
    return Publication(
        "jinan-civil", WANG_XIUYING, "civil.death_registration",
        {"date_of_death": died.isoformat(), "place": "山东省千佛山医院, 济南市历下区",
         "certificate_no": f"370102-{died.year}-{rng.randint(1, 99_999):05d}"},
        died + timedelta(days=2),
    )


def describe(data_type: str, payload: dict[str, Any]) -> str:
    """One line a person can read, for tables (amounts in yuan)."""
    if data_type == "vehicle.registration":
        return f"{payload['plate']} {payload['brand']}, {payload['vehicle_type']}, since {payload['registered']}, {payload['status']}"
    if data_type == "traffic.violation":
        return f"{payload['count']} violations, {payload['points']} points, fines {yuan(payload['fines'])}"
    if data_type == "civil.death_registration":
        return f"died {payload['date_of_death']}, {payload['place']}, certificate {payload['certificate_no']}"
    if data_type == "medical.claims":
        return (f"{payload['year']}: {payload['visits']} visits, cost {yuan(payload['total_cost'])}, "
                f"reimbursed {yuan(payload['reimbursed'])}")
    if data_type in ("housing_fund.contributions", "tax.payments"):
        series = payload["monthly"]
        total = sum(point["amount"] for point in series)
        return f"{series[0]['month']}…{series[-1]['month']}: {len(series)} months, {yuan(total)} in all"
    if data_type == "market.business_licence":
        return f"{payload['name']}, since {payload['registered']}, capital {yuan(payload['capital'])}, {payload['status']}"
    raise ValueError(f"no description for {data_type!r}")


def _medical_year(year: int, rng: random.Random) -> dict[str, Any]:
    cost = rng.randint(600_000, 2_400_000)
    return {"year": year, "visits": rng.randint(4, 11), "total_cost": cost, "reimbursed": cost * rng.randint(55, 72) // 100}


def _last_months(today: date, count: int) -> list[str]:
    """The ``count`` whole months before ``today``'s month, oldest first, as ``YYYY-MM``."""
    index = today.year * 12 + today.month - 1
    return [f"{(index - back) // 12}-{(index - back) % 12 + 1:02d}" for back in range(count, 0, -1)]


def _month_end(month: str) -> date:
    year, number = map(int, month.split("-"))
    return date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)
