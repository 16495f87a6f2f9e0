"""C2SP signed notes and checkpoints: Go's known answers, key manglings refused, malformed notes
refused with a named error, and a fuzzed opener that raises nothing but NoteError."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from stemedb import note

DATA = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "merkle.json").read_text("utf-8")
)
GO = DATA["notes"]["go_sumdb_note"]
PETER = note.Verifier.parse(GO["verifier_key"])
SIGNED = GO["text"] + "\n" + GO["signature_line"]
LOG = note.Signer(DATA["notes"]["log"]["checkpoints"][0]["body"].split("\n")[0], bytes(32))


def test_key_id_is_sha256_of_name_newline_type_and_key() -> None:
    import hashlib

    digest = hashlib.sha256(b"PeterNeumann\n\x01" + PETER.public_key).digest()
    assert PETER.id == int.from_bytes(digest[:4], "big") == 0xC74F20A3


def test_every_mangling_of_the_go_keys_is_refused() -> None:
    """As Go's own tests do: every truncation and every byte bumped by one must fail."""
    for key, parse in (
        (GO["verifier_key"], note.Verifier.parse),
        (GO["signer_key"], note.Signer.parse),
    ):
        parse(key)
        for i in range(len(key)):
            for j in range(i + 1, len(key) + 1):
                if (i, j) != (0, len(key)):
                    with pytest.raises(note.MalformedKey):
                        parse(key[i:j])
        for i in range(len(key)):
            bumped = key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :]
            with pytest.raises(note.MalformedKey):
                parse(bumped)


def test_key_errors_name_the_problem() -> None:
    cases = {
        "PeterNeumann+c74f20a3": "3 '.'-separated fields",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": "key name",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": "8 lowercase hex",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T": "base64",
        "PeterNeumann+c74f20a3+AhpjMnFjVVBEaE1RZWd3eGJ6aEtxaUJmc1ZrbXFxL0xE": "signature type",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW": "does not match",
    }
    for key, reason in cases.items():
        with pytest.raises(note.MalformedKey, match=reason):
            note.Verifier.parse(key)
    with pytest.raises(note.MalformedKey, match="PRIVATE"):
        note.Signer.parse("PUBLIC+KEY" + GO["signer_key"][len("PRIVATE+KEY") :])


def test_generated_keys_round_trip() -> None:
    signer = note.generate_signer("stemedb.local/log")
    assert note.Signer.parse(signer.encode()) == signer
    assert note.Verifier.parse(signer.verifier.encode()) == signer.verifier
    assert signer.encode().startswith(f"PRIVATE+KEY+stemedb.local/log+{signer.id:08x}+")
    assert "seed" not in repr(signer) or signer.seed.hex() not in repr(signer)


def test_open_refuses_malformed_notes() -> None:
    sig = GO["signature_line"]
    text = GO["text"]
    bad = {
        text: "blank line",
        text + "\n": "no signature lines",
        text + "\n" + sig[:-1]: "no signature lines",
        "\x01" + text + "\n" + sig: "U\\+0001",
        text + "\n" + "— Bad Name " + sig.split(" ")[-1]: "signature line 1",
        text + "\n" + sig + "Unexpected line.\n": "signature line 2",
        text + "\n" + sig.replace("x08go", "x08g!"): "base64",
        text + "\n" + "— PeterNeumann AAAA\n": "fewer than 5",
        text + "\n" + sig * 101: "more than 100",
    }
    for msg, reason in bad.items():
        with pytest.raises(note.MalformedNote, match=reason):
            note.open_note(msg, [PETER])
    with pytest.raises(note.MalformedNote, match="UTF-8"):
        note.open_note(b"\xff" + SIGNED.encode(), [PETER])
    with pytest.raises(note.MalformedNote, match="more than"):
        note.open_note(b"a" * (note.NOTE_BYTES_MAX + 1), [PETER])


def test_open_verifies_and_refuses() -> None:
    assert note.open_note(SIGNED, [PETER]).text == GO["text"]
    assert note.open_note(SIGNED.encode(), [PETER]).text == GO["text"]
    # Unknown keys are ignored; a note with no known signature is refused.
    with pytest.raises(note.NoteNotVerified, match="no signature by a known key"):
        note.open_note(SIGNED, [LOG.verifier])
    # A known key whose signature fails rejects the whole note.
    tampered = SIGNED.replace("problem is", "problem was")
    with pytest.raises(note.NoteNotVerified, match="invalid signature for key PeterNeumann"):
        note.open_note(tampered, [PETER])
    # A duplicated valid signature is fine; the repeat is dropped.
    twice = note.open_note(SIGNED + GO["signature_line"], [PETER])
    assert len(twice.signatures) == 1


def test_sign_refuses_bad_text() -> None:
    with pytest.raises(note.MalformedNote, match="newline"):
        note.sign_note("no newline", [LOG])
    with pytest.raises(note.MalformedNote, match="U\\+0007"):
        note.sign_note("bell \x07\n", [LOG])
    with pytest.raises(note.MalformedNote, match="at least one signer"):
        note.sign_note("a\n", [])


def test_checkpoint_round_trip_and_spec_example_body() -> None:
    # The body of c2sp.org/tlog-checkpoint's example parses (its signature is not ours to check).
    example = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    cp = note.parse_checkpoint(example)
    assert (cp.origin, cp.tree_size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.body() == example
    signed = note.Checkpoint("stemedb.local/log", 5, b"\x11" * 32).sign(LOG)
    # Origin, a blank line, then one em-dash signature line naming the key.
    lines = signed.split("\n")
    assert lines[0] == "stemedb.local/log" and lines[1] == "5" and lines[3] == ""
    assert lines[4].startswith("\u2014 stemedb.local/log ")
    raw = base64.b64decode(lines[4].split(" ")[2])
    assert raw[:4] == LOG.id.to_bytes(4, "big") and len(raw) == 68
    assert note.open_checkpoint(signed, LOG.verifier).root_hash == b"\x11" * 32


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("o\n5\n", "at least 3"),
        ("\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n", "origin"),
        ("o\n05\nERERERERERERERERERERERERERERERERERERERERERE=\n", "leading zeros"),
        ("o\n-1\nERERERERERERERERERERERERERERERERERERERERERE=\n", "decimal"),
        ("o\n18446744073709551616\nERERERERERERERERERERERERERERERERERERERERERE=\n", "2\\*\\*64"),
        ("o\n5\nERER\n", "32"),
        ("o\n5\nnot base64!\n", "base64"),
        ("o\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n\n", "extension"),
        ("o\n5\nERERERERERERERERERERERERERERERERERERERERERE=", "newline"),
    ],
)
def test_checkpoint_refuses_malformed_bodies(body: str, reason: str) -> None:
    with pytest.raises(note.MalformedCheckpoint, match=reason):
        note.parse_checkpoint(body)


def test_open_checkpoint_refuses_other_key_and_other_origin() -> None:
    other = note.Signer("stemedb.local/log", bytes([9]) * 32)
    signed = note.Checkpoint("stemedb.local/log", 5, b"\x11" * 32).sign(other)
    with pytest.raises(note.NoteNotVerified):
        note.open_checkpoint(signed, LOG.verifier)
    # Signed by the right key, but the checkpoint of another log.
    foreign = note.Checkpoint("evil.example/log", 5, b"\x11" * 32).sign(LOG)
    with pytest.raises(note.NoteNotVerified, match="origin"):
        note.open_checkpoint(foreign, LOG.verifier)
    assert note.open_checkpoint(foreign, LOG.verifier, origin="evil.example/log").tree_size == 5


_notes = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.builds(lambda a, b: a + "\n\n" + b, st.text(max_size=80), st.text(max_size=120)),
    st.builds(
        lambda i, c: SIGNED[:i] + c + SIGNED[i + 1 :],
        st.integers(0, len(SIGNED) - 1),
        st.characters(),
    ),
)


def test_fuzz_open_raises_only_note_errors(seed: int) -> None:
    @hypothesis_seed(seed)
    @settings(max_examples=500, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(_notes)
    def run(msg: str | bytes) -> None:
        try:
            cp = note.open_checkpoint(msg, PETER, origin="If you think cryptography is the")
        except note.NoteError:
            pass
        else:
            raise AssertionError(f"a fuzzed note opened as a checkpoint: {cp}")
        try:
            opened = note.open_note(msg, [PETER])
        except note.NoteError:
            return
        assert opened.text == GO["text"], "only the genuinely signed text may verify"

    run()


def test_key_names_with_a_unicode_space_or_a_plus_are_refused() -> None:
    for name in ("a b", "a\u0085b", "a\u00a0b", "a\u3000b", "a+b", ""):
        with pytest.raises(note.MalformedKey, match="key name"):
            note.Signer(name, bytes(32))
    assert note.Signer("a\ufeffb", bytes(32)).name == "a\ufeffb"  # U+FEFF is not White_Space


def test_log_key_file_created_once_0600_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    first = note.load_or_create_signer(path, "stemedb.local/log")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.encode() + "\n"
    again = note.load_or_create_signer(path, "stemedb.local/log")
    assert again == first, "the same key on every start"
    with pytest.raises(note.MalformedKey, match=re.escape("not for 'other.example/log'")):
        note.load_or_create_signer(path, "other.example/log")
    path.write_text(first.encode()[:-3] + "\n")
    with pytest.raises(note.MalformedKey, match=re.escape(str(path))):
        note.load_or_create_signer(path, "stemedb.local/log")
    path.write_bytes(b"\xff" * 10)
    with pytest.raises(note.MalformedKey, match="ASCII"):
        note.load_or_create_signer(path, "stemedb.local/log")
    assert path.read_bytes() == b"\xff" * 10, "a bad key file is never overwritten"
