"""Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), signed
with Ed25519 through ``cryptography``.

A checkpoint's text is three lines (origin, tree size in decimal, base64 root hash) and optional
extension lines; then a blank line and one signature line per signer:
``— <key name> <base64(4-byte key id || 64-byte signature)>``. A key id is the first four bytes
of SHA-256(key name || "\\n" || 0x01 || public key). A verifier key is written
``<name>+<key id hex>+<base64(0x01 || public key)>``."""

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts a signature line


class NoteError(ValueError):
    """A note or a key that cannot be read, or a signature that does not verify."""


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    public: Ed25519PublicKey = field(repr=False)

    @property
    def id(self) -> bytes:
        return key_id(self.name, _raw(self.public))

    def vkey(self) -> str:
        encoded = base64.b64encode(ED25519 + _raw(self.public)).decode()
        return f"{self.name}+{self.id.hex()}+{encoded}"


def parse_vkey(text: str) -> Verifier:
    """A verifier key as published (``name+hexid+base64``); its id must match its key."""
    parts = text.strip().split("+", 2)  # the base64 key may hold '+' itself
    if len(parts) != 3 or not _valid_name(parts[0]):
        raise NoteError("a verifier key reads name+keyid+base64key")
    name, hex_id, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        claimed = bytes.fromhex(hex_id)
    except ValueError as error:
        raise NoteError("the verifier key's id or key is not valid hex/base64") from error
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are accepted")
    if claimed != key_id(name, raw[1:]):
        raise NoteError("the verifier key's id does not match its name and key")
    return Verifier(name, Ed25519PublicKey.from_public_bytes(raw[1:]))


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise NoteError(f"{self.name!r} cannot name a key (no space, no '+')")

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private.public_key())

    def sign(self, text: str) -> str:
        """The note: the text, a blank line, this key's signature line."""
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        signature = self.private.sign(text.encode())
        encoded = base64.b64encode(self.verifier.id + signature).decode()
        return f"{text}\n{DASH} {self.name} {encoded}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text once ``verifier``'s signature on it is checked; NoteError otherwise
    (unsigned by that key, a bad signature, a malformed note)."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("a signed note is its text, a blank line, then signature lines")
    text += "\n"
    found = False
    for line in signatures[:-1].split("\n"):
        prefix = f"{DASH} {verifier.name} "
        if not line.startswith(DASH + " "):
            raise NoteError(f"not a signature line: {line[:40]!r}")
        if not line.startswith(prefix):
            continue  # another key's signature: not ours to check
        try:
            blob = base64.b64decode(line[len(prefix) :], validate=True)
        except ValueError as error:
            raise NoteError("a signature is not valid base64") from error
        if blob[:4] != verifier.id:
            continue
        try:
            verifier.public.verify(blob[4:], text.encode())
        except InvalidSignature as error:
            raise NoteError(f"the signature of {verifier.name} does not verify") from error
        found = True
    if not found:
        raise NoteError(f"the note carries no signature by {verifier.name}")
    return text


def parse_skey(text: str) -> Signer:
    """A signer key as the Go tools write it: ``PRIVATE+KEY+name+hexid+base64(0x01 || seed)``."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
        raise NoteError("a signer key reads PRIVATE+KEY+name+keyid+base64key")
    name, hex_id, encoded = parts[2:]
    try:
        raw = base64.b64decode(encoded, validate=True)
        claimed = bytes.fromhex(hex_id)
    except ValueError as error:
        raise NoteError("the signer key's id or key is not valid hex/base64") from error
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("only Ed25519 signer keys (type 0x01, a 32-byte seed) are accepted")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if claimed != signer.verifier.id:
        raise NoteError("the signer key's id does not match its name and key")
    return signer


def skey(signer: Signer) -> str:
    seed = signer.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    encoded = base64.b64encode(ED25519 + seed).decode()
    return f"PRIVATE+KEY+{signer.name}+{signer.verifier.id.hex()}+{encoded}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not lines[0]:
        raise NoteError("a checkpoint is an origin, a size and a root hash, one per line")
    origin, size, root, *extensions = lines[:-1]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError(f"the tree size {size!r} is not a decimal number")
    try:
        digest = base64.b64decode(root, validate=True)
    except ValueError as error:
        raise NoteError("the root hash is not base64") from error
    if len(digest) != 32:
        raise NoteError("the root hash is not 32 bytes")
    if any(not line for line in extensions):
        raise NoteError("a checkpoint has no empty line in its text")
    return Checkpoint(origin, int(size), digest, tuple(extensions))
