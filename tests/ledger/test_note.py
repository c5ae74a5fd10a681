"""Signed notes and checkpoints, byte for byte as the reference implementation
(golang.org/x/mod/sumdb/note) writes them, and refused when anything is off."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from creneau.ledger.note import (
    Checkpoint,
    NoteError,
    Signer,
    open_note,
    parse_checkpoint,
    parse_skey,
    parse_vkey,
    skey,
)

# The example of the reference implementation's documentation.
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
NOTE = (
    TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
)


def test_keys_and_signature_match_the_reference_byte_for_byte():
    signer = parse_skey(SKEY)
    assert signer.verifier.vkey() == VKEY
    assert skey(signer) == SKEY
    assert signer.sign(TEXT) == NOTE
    assert open_note(NOTE, parse_vkey(VKEY)) == TEXT


def test_a_changed_note_or_another_key_is_refused():
    verifier = parse_vkey(VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(NOTE.replace("problem,", "problem;"), verifier)
    other = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    # Same name, another key: its key id differs, so the note has no signature by it.
    with pytest.raises(NoteError, match="no signature"):
        open_note(NOTE, other.verifier)
    # A forged signature line under the right key id does not verify.
    blob = base64.b64decode(NOTE.split(" ")[-1])
    forged = NOTE.rsplit(" ", 1)[0] + " " + base64.b64encode(blob[:4] + bytes(64)).decode() + "\n"
    with pytest.raises(NoteError, match="does not verify"):
        open_note(forged, verifier)
    for bad in (TEXT, NOTE.rstrip("\n"), "no\n\nsignature\n"):
        with pytest.raises(NoteError):
            open_note(bad, verifier)


def test_verifier_keys_are_checked():
    with pytest.raises(NoteError, match="does not match"):
        parse_vkey(VKEY.replace("c74f20a3", "c74f20a4"))
    for bad in ("", "PeterNeumann+c74f20a3", "Peter Neumann+c74f20a3+ARpc", "a+zz+ARpc2Qc="):
        with pytest.raises(NoteError):
            parse_vkey(bad)


def test_a_checkpoint_reads_back_as_written():
    signer = Signer("rdv.aphp.fr/ledger", Ed25519PrivateKey.generate())
    checkpoint = Checkpoint("rdv.aphp.fr/ledger", 42, bytes(range(32)), ("time 1700000000",))
    note = signer.sign(checkpoint.text())
    assert note.startswith("rdv.aphp.fr/ledger\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    assert parse_checkpoint(open_note(note, signer.verifier)) == checkpoint
    for bad in ("o\n012\nAAAA\n", "o\n1\nnot base64!\n", "o\nx\n" + "A" * 44 + "\n", "o\n1\n"):
        with pytest.raises(NoteError):
            parse_checkpoint(bad)
