"""A hub that ran before its ledger: every perimeter version and channel it already had is
appended once, in the order they were made, so that the log can place every later offer and
booking (an empty database appends nothing)."""

from django.db import migrations
from django.utils import timezone

from creneau.ledger.merkle import leaf_hash
from creneau.ledger.services import canonical


def genesis(apps, schema_editor):
    Entry = apps.get_model("ledger", "Entry")
    PerimeterVersion = apps.get_model("channels", "PerimeterVersion")
    Channel = apps.get_model("channels", "Channel")
    if Entry.objects.exists():
        return
    now = timezone.now()
    stamp = now.isoformat(timespec="seconds")
    rows = []
    for version in PerimeterVersion.objects.select_related("perimeter").order_by(
        "published_at", "pk"
    ):
        payload = {
            "kind": "perimeter",
            "perimeter": version.perimeter.public_id,
            "version": version.public_id,
            "number": version.number,
            "establishments": sorted(version.establishments.values_list("finess", flat=True)),
            "departments": sorted(
                f"{finess}/{code}"
                for finess, code in version.departments.values_list("establishment__finess", "code")
            )
            if version.narrowed_to_departments
            else [],
            "roles": sorted(
                f"{finess}/{rpps}"
                for finess, rpps in version.practitioner_roles.values_list(
                    "establishment__finess", "practitioner__rpps"
                )
            )
            if version.narrowed_to_roles
            else [],
            "by": "",
            "via": "genesis",
            "at": stamp,
        }
        rows.append(("perimeter", "", payload))
    for channel in Channel.objects.select_related("perimeter").order_by("created_at", "pk"):
        payload = {
            "kind": "channel",
            "channel": channel.public_id,
            "name": channel.name,
            "channel_kind": channel.kind,
            "perimeter": channel.perimeter.public_id,
            "action": "created" if channel.is_active else "disabled",
            "by": "",
            "via": "genesis",
            "at": stamp,
        }
        rows.append(("channel", channel.public_id, payload))
    for kind, channel, payload in rows:
        data = canonical(payload)
        Entry.objects.create(
            kind=kind,
            channel=channel,
            data=data,
            leaf_hash=leaf_hash(data.encode()),
            created_at=now,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_entries_tree_checkpoints"),
        ("channels", "0002_channel_branding_allowed_origins"),
    ]

    operations = [migrations.RunPython(genesis, migrations.RunPython.noop)]
