"""The French national identifiers as FHIR writes them (ANS conventions, STANDARDS.md §1): a
practitioner by "8" + RPPS in the IDNPS system, an establishment by "1" + FINESS in the IDNST
system, each typed with fr-v2-0203. Shared by the FHIR server and the SAS feedback."""

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
FR_V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"


def typed_identifier(kind: str, system: str, value: str) -> dict:
    return {
        "type": {"coding": [{"system": FR_V2_0203, "code": kind}]},
        "system": system,
        "value": value,
    }


def rpps_identifier(rpps: str) -> dict:
    return typed_identifier("IDNPS", IDNPS_SYSTEM, "8" + rpps)


def finess_identifier(finess: str) -> dict:
    return typed_identifier("IDNST", IDNST_SYSTEM, "1" + finess)
