"""Demo data: Dalfsen's six kernen and a team of four. Nothing here is hard-coded elsewhere."""

from __future__ import annotations

import secrets
from pathlib import Path

import sqlalchemy as sa

from crisis.auth import accounts
from crisis.extensions import db
from crisis.models import Area, Role, User

# Approximate centres; the polygons are simple squares around them, good enough for a demo map
# and for CAP areas. Postcodes per kern from the municipality's PC4 ranges.
DALFSEN_KERNEN = [
    ("dalfsen", "Dalfsen", ["7721", "7722"], (52.5075, 6.2580)),
    ("nieuwleusen", "Nieuwleusen", ["7711"], (52.5820, 6.2830)),
    ("lemelerveld", "Lemelerveld", ["8151", "8152"], (52.4420, 6.3350)),
    ("hoonhorst", "Hoonhorst", ["7722"], (52.4700, 6.2560)),
    ("oudleusen", "Oudleusen", ["7722"], (52.5300, 6.3420)),
    ("ankum", "Ankum", ["7722"], (52.5150, 6.2950)),
]

DEMO_TEAM = [
    ("admin@dalfsen.demo", "Beheerder", Role.admin),
    ("approver@dalfsen.demo", "Communicatieadviseur", Role.approver),
    ("editor@dalfsen.demo", "Redacteur", Role.editor),
    ("viewer@dalfsen.demo", "Meelezer", Role.viewer),
]


def square(lat: float, lon: float, half: float = 0.012) -> list:
    """A closed GeoJSON ring ([lon, lat] pairs) around a point."""
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return [ring]


def seed_areas() -> None:
    for code, name, postcodes, (lat, lon) in DALFSEN_KERNEN:
        if db.session.scalar(sa.select(Area.id).where(Area.code == code)) is None:
            db.session.add(Area(code=code, name=name, postcodes=postcodes, polygon=square(lat, lon)))


def seed_team(accounts_file: Path) -> dict[str, str]:
    """Create the demo team once; the passwords live in a 0600 file in the instance folder."""
    known = _read_accounts(accounts_file)
    for email, name, role in DEMO_TEAM:
        if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            continue
        password = known.get(email) or secrets.token_urlsafe(12)
        accounts.create_user(email, password, role, name=name)
        known[email] = password
    accounts_file.write_text("".join(f"{email} {pw}\n" for email, pw in known.items()))
    accounts_file.chmod(0o600)
    return known


def _read_accounts(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    return {email: password for email, password in pairs}


# Residents per kern (kern + buitengebied, Gemeentemagazine Dalfsen 2024): demo subscribers are
# spread the same way.
KERN_POPULATION = {"dalfsen": 11144, "nieuwleusen": 9566, "lemelerveld": 4798, "hoonhorst": 1604,
                   "oudleusen": 1783, "ankum": 808}
DEMO_SUBSCRIBERS = 300
DEMO_PHONE_PREFIX = "+3161000"  # +3161000xxxx: sandbox-style numbers, never a real person's


def seed_subscribers(total: int = DEMO_SUBSCRIBERS) -> int:
    """Demo subscribers on sandbox-style numbers, spread over the kernen by population, ~10%
    English, active with a consent record `how: "demo"`. Idempotent: once any demo number
    exists nothing is added (so a number erased or stopped in the demo stays so). Returns how
    many were added."""
    from crisis.models import Subscriber, SubscriberStatus
    from crisis.models.types import utcnow

    areas = dict(db.session.execute(sa.select(Area.code, Area.id).where(
        Area.code.in_(list(KERN_POPULATION)))).all())
    population = {code: n for code, n in KERN_POPULATION.items() if code in areas}
    if not population:
        return 0
    # Largest remainder: the shares add up to exactly `total`.
    whole = sum(population.values())
    quotas = {code: total * n / whole for code, n in population.items()}
    shares = {code: int(q) for code, q in quotas.items()}
    for code in sorted(quotas, key=lambda c: quotas[c] - shares[c], reverse=True)[
            :total - sum(shares.values())]:
        shares[code] += 1
    plan = [code for code in population for _ in range(shares[code])]
    if db.session.scalar(sa.select(Subscriber.id).where(
            Subscriber.phone.like(DEMO_PHONE_PREFIX + "%")).limit(1)) is not None:
        return 0
    now = utcnow()
    added = 0
    for index, code in enumerate(plan):
        phone = f"{DEMO_PHONE_PREFIX}{index:04d}"
        language = "en" if index % 10 == 7 else "nl"
        db.session.add(Subscriber(
            phone=phone, area_ids=[areas[code]], language=language,
            status=SubscriberStatus.active, synthetic=False, created_at=now, confirmed_at=now,
            consent={"what": {"area_ids": [areas[code]], "areas": [code], "language": language},
                     "when": now.isoformat(), "how": "demo", "text_version": "demo"}))
        added += 1
    return added


def seed_demo(instance_path: str) -> dict[str, str]:
    seed_areas()
    db.session.flush()
    seed_subscribers()
    team = seed_team(Path(instance_path) / "demo-accounts.txt")
    db.session.commit()
    return team
