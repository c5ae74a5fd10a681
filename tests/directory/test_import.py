"""`creneau import`: CSV files and FHIR bundles, all or nothing, idempotent, clear refusals."""

import copy
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from creneau.channels.models import Channel
from creneau.directory.models import Establishment, Practitioner, PractitionerRole, VisitType
from tests.cli import hub_env, run_creneau

DATA = Path(__file__).resolve().parent.parent / "data"
CSV_FILES = sorted((DATA / "csv").glob("*.csv"))
BUNDLE = DATA / "directory-bundle.json"


def run_import(*paths: Path) -> str:
    from io import StringIO

    out = StringIO()
    with translation.override("en"):
        call_command("import", *[str(p) for p in paths], stdout=out)
    return out.getvalue()


def test_a_csv_directory_is_imported_with_its_references(db):
    output = run_import(*CSV_FILES)
    assert "establishments: 2 created, 0 updated, 0 unchanged" in output
    lake = Establishment.objects.get(finess="330800129")
    assert (lake.latitude, lake.longitude) == (44.88, -0.57)  # French decimal commas read
    assert lake.time_zone == "Europe/Paris"
    dupont = Practitioner.objects.get(rpps="10880000020")
    role = PractitionerRole.objects.get(practitioner=dupont, department__code="sports-medicine")
    assert {s.code for s in role.specialties.all()} == {"sports-medicine", "physical-medicine"}
    assert VisitType.objects.get(code="sport-certificate").preparation_fr
    # The new organisation gets its public-site channel, bound to its own hospitals.
    channel = Channel.objects.get(
        organisation__finess_ej="330800012", kind=Channel.Kind.PUBLIC_SITE
    )
    assert "public-site channel created" in output
    assert set(
        channel.perimeter.versions.get().establishments.values_list("finess", flat=True)
    ) == {
        "330800111",
        "330800129",
    }


def test_importing_the_same_files_twice_changes_nothing_the_second_time(db, dump_directory):
    run_import(*CSV_FILES)
    run_import(BUNDLE)
    before = dump_directory()
    second = run_import(*CSV_FILES, BUNDLE)
    assert "nothing changed" in second
    assert " created" not in second.replace("0 created", "")
    assert dump_directory() == before


def test_an_update_in_a_file_updates_only_that_record(db, tmp_path):
    run_import(*CSV_FILES)
    edited = tmp_path / "practitioners.csv"
    edited.write_text(
        (DATA / "csv" / "practitioners.csv")
        .read_text(encoding="utf-8")
        .replace("Inès,Garnier-Exemple", "Inès,Garnier-Durand")
    )
    output = run_import(edited)
    assert "practitioners: 0 created, 1 updated, 2 unchanged" in output
    found = Practitioner.objects.get(rpps="10880000038")
    assert found.last_name == "Garnier-Durand"
    assert "garnier durand" in found.search_name


def _broken_copy(tmp_path: Path, name: str, old: str, new: str) -> list[Path]:
    folder = tmp_path / "csv"
    shutil.copytree(DATA / "csv", folder)
    target = folder / name
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return sorted(folder.glob("*.csv"))


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        (
            "establishments.csv",
            "330800129",
            "330800128",
            'establishments.csv, row 3, field "finess": The check key of FINESS number 330800128',
        ),
        (
            "practitioners.csv",
            "10880000038",
            "1088000003",
            'practitioners.csv, row 4, field "rpps": An RPPS number has 11 digits',
        ),
        (
            "practitioner_roles.csv",
            "cardiology\n",
            "kardiology\n",
            'practitioner_roles.csv, row 4, field "specialties": no specialty kardiology',
        ),
        (
            "visit_types.csv",
            ",20,oui,",
            ",deux,oui,",
            "visit_types.csv, row 2, field \"duration_minutes\": 'deux' is not a number",
        ),
        (
            "organisations.csv",
            ",oui,",
            ",peut-être,",
            'organisations.csv, row 2, field "is_public": expected yes or no',
        ),
        (
            "establishments.csv",
            "Europe/Paris",
            "Europe/Bordeaux",
            'establishments.csv, row 2, field "time_zone": Europe/Bordeaux is not an IANA',
        ),
        (
            "departments.csv",
            "establishment_finess,code,name",
            "establishment_finess,code,nom",
            "departments.csv, header",
        ),
    ],
)
def test_a_bad_row_names_file_row_and_field_and_leaves_the_directory_as_it_was(
    db, dump_directory, tmp_path, name, old, new, expected
):
    before = dump_directory()
    files = _broken_copy(tmp_path, name, old, new)
    with pytest.raises(CommandError) as refused:
        run_import(*files)
    assert expected in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    assert dump_directory() == before


def test_a_fhir_bundle_is_imported_and_validated(db):
    output = run_import(BUNDLE)
    assert "practitioner_roles: 2 created" in output
    morel = Practitioner.objects.get(rpps="10880001010")  # the IDNPS prefix 8 is removed
    assert (morel.title, morel.first_name) == ("Pr", "Anne")
    role = PractitionerRole.objects.get(practitioner=morel)
    assert role.department.code == "neurochirurgie"
    assert role.establishment.city == "Lyon"
    assert role.establishment.organisation.short_name == "HEL"


def _broken_bundle(tmp_path: Path, change) -> Path:
    data = copy.deepcopy(json.loads(BUNDLE.read_text(encoding="utf-8")))
    change(data)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _set(index, *keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        target = data["entry"][index]["resource"]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set(1, "address", "postalCode", 69004), 'entry 1 (Location/loc-1), field "address'),
        (
            _set(3, "identifier", []),
            'entry 3 (Practitioner/pr-1), field "identifier": a Practitioner needs its RPPS',
        ),
        (
            _set(5, "location", [{"reference": "Location/nowhere"}]),
            'entry 5 (PractitionerRole/role-1), field "location": Location/nowhere',
        ),
        (
            _set(
                1, "identifier", [{"system": "http://finess.sante.gouv.fr", "value": "690800110"}]
            ),
            'entry 1 (Location/loc-1), field "finess": The check key',
        ),
        (_set(0, "resourceType", "Patient"), "entry 0"),
    ],
)
def test_a_broken_fhir_resource_is_named_and_nothing_is_imported(
    db, dump_directory, tmp_path, change, expected
):
    before = dump_directory()
    with pytest.raises(CommandError) as refused:
        run_import(_broken_bundle(tmp_path, change))
    assert expected in str(refused.value)
    assert "bundle.json" in str(refused.value)
    assert dump_directory() == before


def test_the_command_line_exits_with_an_error_and_the_message(tmp_path):
    broken = tmp_path / "establishments.csv"
    broken.write_text("finess,organisation_finess_ej,name,city\n123,750712184,X,Paris\n")
    env = hub_env(tmp_path)
    run_creneau("migrate", "-v0", env=env, check=True)
    result = run_creneau("import", str(broken), env=env)
    assert result.returncode == 1
    # The command speaks the hub's language, French by default.
    assert result.stderr.startswith("CommandError: import refusé, rien n'a été modifié : ")
    assert (
        'establishments.csv, ligne 2, champ "organisation_finess_ej": aucun(e) organisation '
        "750712184" in result.stderr
    )
    assert "Traceback" not in result.stderr
