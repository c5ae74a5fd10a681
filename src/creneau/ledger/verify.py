"""``creneau ledger verify``: what an outside auditor runs, with no database access. It reads the
log (from a hub's public endpoints or from an export), checks every checkpoint's signature, that
the entries hash to every signed root (so each checkpoint extends the one before), that the log
extends the one seen on the last run (``--state``), and that every offer, booking and move lies
inside the perimeter version in force for its channel at its place in the log."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creneau.ledger import merkle
from creneau.ledger.note import NoteError, Verifier, open_note, parse_checkpoint

PAGE = 1000


class VerifyError(Exception):
    """The log does not verify: the message names the entry or the checkpoint."""


class Compact:
    """The right edge of a Merkle tree being built leaf by leaf: its root at any size in
    O(log n), without keeping the leaves."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[tuple[int, bytes]] = []  # (height, hash), heights decreasing

    def append(self, leaf: bytes) -> None:
        height, digest = 0, leaf
        while self.stack and self.stack[-1][0] == height:
            _height, left = self.stack.pop()
            digest = merkle.node_hash(left, digest)
            height += 1
        self.stack.append((height, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        digest = self.stack[-1][1]
        for _height, left in reversed(self.stack[:-1]):
            digest = merkle.node_hash(left, digest)
        return digest


class Source(ABC):
    """Where the log is read: a hub's public endpoints, or an export file. The proofs, the
    published perimeters and the recorded leaf hashes are optional: None where a source has
    none."""

    @abstractmethod
    def checkpoint_notes(self) -> list[str]:
        """Every signed checkpoint note, oldest first."""

    @abstractmethod
    def entries(self, size: int) -> Iterator[str]:
        """The first ``size`` entries' canonical JSON, in log order."""

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        return None

    def inclusion(self, index: int, size: int) -> list[bytes] | None:
        return None

    def perimeters(self) -> list[dict] | None:
        return None

    def recorded_leaf(self, index: int) -> bytes | None:
        """The leaf hash the hub recorded when the entry was appended, if the source has it."""
        return None


class HubSource(Source):
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def _get(self, path: str, **query) -> bytes:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (http(s) given)
                return answer.read()
        except urllib.error.HTTPError as error:
            raise VerifyError(f"{url}: HTTP {error.code}") from None
        except OSError as error:
            raise VerifyError(f"{url}: {error}") from None

    def checkpoint_notes(self) -> list[str]:
        notes: list[str] = []
        after: dict = {}
        while True:
            page = json.loads(self._get("/ledger/checkpoints", **after))["checkpoints"]
            notes += [row["note"] for row in page]
            if len(page) < PAGE:
                return notes
            after = {"after": page[-1]["size"]}

    def entries(self, size: int):
        for start in range(0, size, PAGE):
            end = min(size, start + PAGE)
            page = json.loads(self._get("/ledger/entries", start=start, end=end))["entries"]
            for offset, row in enumerate(page):
                if row["index"] != start + offset:
                    raise VerifyError(f"entry {start + offset}: the hub sent index {row['index']}")
                yield row["data"]
            if len(page) != end - start:
                raise VerifyError(f"entries {start} to {end}: the hub sent {len(page)}")

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        body = json.loads(self._get("/ledger/proof/consistency", first=first, second=second))
        return [base64.b64decode(p) for p in body["proof"]]

    def inclusion(self, index: int, size: int) -> list[bytes] | None:
        body = json.loads(self._get("/ledger/proof/inclusion", index=index, size=size))
        return [base64.b64decode(p) for p in body["proof"]]

    def perimeters(self) -> list[dict] | None:
        return json.loads(self._get("/ledger/perimeters"))["perimeter_versions"]


class ExportSource(Source):
    def __init__(self, path: Path) -> None:
        try:
            self.data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise VerifyError(f"{path}: not a ledger export ({error})") from None

    def checkpoint_notes(self) -> list[str]:
        return list(self.data.get("checkpoints", []))

    def entries(self, size: int):
        # Fewer entries than the checkpoint says is reported by the verifier, not raised.
        yield from self.data.get("entries", [])[:size]

    def recorded_leaf(self, index: int) -> bytes | None:
        leaves = self.data.get("leaves") or []
        return bytes.fromhex(leaves[index]) if index < len(leaves) else None


@dataclass
class ChannelCounts:
    offers: int = 0
    slots_offered: int = 0
    bookings: int = 0
    moves: int = 0
    cancellations: int = 0
    refusals: int = 0
    out_of_perimeter: int = 0


@dataclass
class Report:
    size: int = 0
    checkpoints: int = 0
    channels: dict[str, ChannelCounts] = field(default_factory=lambda: defaultdict(ChannelCounts))
    names: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)


def _inside(version: dict, place: dict) -> bool:
    finess = place.get("finess", "")
    if finess not in version["establishments"]:
        return False
    if (
        version.get("departments")
        and f"{finess}/{place.get('department', '')}" not in version["departments"]
    ):
        return False
    return not (
        version.get("roles") and f"{finess}/{place.get('rpps', '')}" not in version["roles"]
    )


class Neutrality:
    """Replays the log: which perimeter version is in force for each channel, and whether each
    offer, booking and move stays inside it."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.versions: dict[str, dict] = {}  # version id -> its content
        self.latest: dict[str, str] = {}  # perimeter id -> its latest version id
        self.bound: dict[str, str] = {}  # channel id -> perimeter id
        self.closed: set[str] = set()

    def _version_for(self, index: int, entry: dict) -> dict | None:
        channel = entry.get("channel", "")
        perimeter = self.bound.get(channel)
        if perimeter is None:
            self.report.fail(f"entry {index}: channel {channel} is not in the log before it")
            return None
        in_force = self.latest.get(perimeter)
        if in_force is None:
            self.report.fail(f"entry {index}: perimeter {perimeter} has no version in the log")
            return None
        if entry.get("perimeter_version") != in_force:
            self.report.fail(
                f"entry {index}: channel {channel} used perimeter version "
                f"{entry.get('perimeter_version')}, but {in_force} was in force"
            )
            return None
        return self.versions[in_force]

    def check(self, index: int, entry: dict) -> None:
        kind, channel = entry.get("kind"), entry.get("channel", "")
        counts = self.report.channels[channel] if channel else None
        if kind == "perimeter":
            self.versions[entry["version"]] = entry
            self.latest[entry["perimeter"]] = entry["version"]
        elif kind == "channel":
            self.report.names[channel] = entry.get("name", channel)
            if entry.get("action") == "disabled":
                self.closed.add(channel)
            else:
                self.closed.discard(channel)
                if entry.get("perimeter") not in self.latest:
                    self.report.fail(
                        f"entry {index}: channel {channel} bound to an unknown perimeter"
                    )
                self.bound[channel] = entry.get("perimeter", "")
        elif kind == "offer" and counts is not None:
            counts.offers += 1
            version = self._version_for(index, entry)
            for slot in entry.get("slots", []):
                counts.slots_offered += 1
                if version is not None and not _inside(version, slot):
                    counts.out_of_perimeter += 1
                    self.report.fail(
                        f"entry {index}: channel {channel} offered slot {slot.get('slot')} at "
                        f"{slot.get('finess')}, outside its perimeter"
                    )
            # A publishing interface's offer: its slots counted by place (booking.services).
            for place in entry.get("places", []):
                counts.slots_offered += int(place.get("slots", 0))
                if version is not None and not _inside(version, place):
                    counts.out_of_perimeter += int(place.get("slots", 0))
                    self.report.fail(
                        f"entry {index}: channel {channel} offered {place.get('slots')} slots at "
                        f"{place.get('finess')}, outside its perimeter"
                    )
        elif kind in ("booking", "move") and counts is not None:
            if kind == "booking":
                counts.bookings += 1
            else:
                counts.moves += 1
            if channel in self.closed:
                self.report.fail(f"entry {index}: channel {channel} booked while disabled")
            version = self._version_for(index, entry)
            if version is not None and not _inside(version, entry):
                counts.out_of_perimeter += 1
                self.report.fail(
                    f"entry {index}: channel {channel} {kind} of appointment "
                    f"{entry.get('appointment')} at {entry.get('finess')}, outside its perimeter"
                )
        elif kind == "cancel" and counts is not None:
            counts.cancellations += 1
        elif kind == "refusal" and counts is not None:
            counts.refusals += 1


def _proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes an inclusion proof lists, in the proof's order."""
    ranges: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return b""

    merkle.inclusion_proof(index, size, record)
    return ranges[::-1]  # recorded from the top down; the proof goes from the leaf up


def locate(source: Source, leaves: list[bytes], size: int) -> int | None:
    """Which entry differs from what the hub's own tree holds under a signed root: compare the
    subtrees an inclusion proof names with the same subtrees of the entries received, and go
    down into the one that differs (O(log n) proofs). None when the source gives no proofs."""
    start, end = 0, size
    while end - start > 1:
        proof = source.inclusion(start, size)
        if proof is None:
            return None
        differing = [
            (a, b)
            for (a, b), digest in zip(_proof_ranges(start, size), proof, strict=False)
            if start <= a < end and merkle.root_of(leaves[a:b]) != digest
        ]
        if not differing:
            return start  # every sibling agrees: the leaf itself differs
        start, end = min(differing)
    return start


def verify(source: Source, verifier: Verifier, state: dict | None = None) -> tuple[Report, dict]:
    """Check everything; the report (failures listed, not raised, so that all are named) and
    the state to keep for the next run."""
    report = Report()
    heads = []
    for note in source.checkpoint_notes():
        try:
            heads.append(parse_checkpoint(open_note(note, verifier)))
        except NoteError as error:
            report.fail(f"checkpoint: {error}")
    heads = [head for head in heads if head.origin == verifier.name] or heads
    if not heads:
        report.fail("no checkpoint signed by this key")
        return report, state or {}
    sizes = [head.size for head in heads]
    if sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
        report.fail("the checkpoints do not grow one after the other")
    latest = heads[-1]
    report.size, report.checkpoints = latest.size, len(heads)
    wanted: dict[int, Any] = {head.size: head for head in heads}
    if state and state.get("size"):
        wanted.setdefault(state["size"], None)
        if state["size"] > latest.size:
            report.fail(f"the log shrank: {state['size']} entries last time, {latest.size} now")
    tree = Compact()
    neutrality = Neutrality(report)
    leaves: list[bytes] = []
    mismatch = None
    for index, data in enumerate(source.entries(latest.size)):
        leaves.append(merkle.leaf_hash(data.encode()))
        tree.append(leaves[-1])
        recorded = source.recorded_leaf(index)
        if recorded is not None and recorded != leaves[-1]:
            report.fail(f"entry {index}: its content is not what was recorded when appended")
        try:
            entry = json.loads(data)
        except ValueError:
            report.fail(f"entry {index}: not JSON")
            entry = {}
        neutrality.check(index, entry)
        if tree.size in wanted:
            root = tree.root()
            head = wanted[tree.size]
            if head is not None and root != head.root:
                report.fail(
                    f"checkpoint {tree.size}: the entries do not hash to its signed root "
                    "(an entry before it was changed, removed, added or moved)"
                )
                mismatch = mismatch or tree.size
            if state and tree.size == state.get("size") and root.hex() != state.get("root"):
                report.fail(
                    f"the log of {tree.size} entries seen last time is not a prefix of this one: "
                    "it forked or was rewritten"
                )
    # What the hub publishes of its perimeter versions today must be what the log recorded when
    # each was published: a version rewritten afterwards in the database shows here.
    for published in source.perimeters() or []:
        logged = neutrality.versions.get(published["version"])
        if logged is None:
            continue  # published after the latest checkpoint
        for part in ("establishments", "departments", "roles"):
            if sorted(published.get(part, [])) != sorted(logged.get(part, [])):
                report.fail(
                    f"perimeter version {published['version']}: the hub's {part} today differ "
                    "from what the log recorded at its publication"
                )
    if state and 0 < state.get("size", 0) < latest.size:
        # The hub's own consistency proof from what the last run saw to what it signs now.
        proof = source.consistency(state["size"], latest.size)
        if proof is not None:
            try:
                merkle.verify_consistency(
                    state["size"], latest.size, bytes.fromhex(state["root"]), latest.root, proof
                )
            except (merkle.ProofError, ValueError) as error:
                report.fail(f"checkpoint {latest.size} does not extend the last run's: {error}")
    if tree.size < latest.size:
        report.fail(f"the log holds {tree.size} entries, its checkpoint {latest.size}")
    elif mismatch:
        found = locate(source, leaves, mismatch)
        if found is not None:
            report.fail(f"entry {found}: its content is not what the log signed")
    return report, {"size": latest.size, "root": latest.root.hex(), "origin": latest.origin}
