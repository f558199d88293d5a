"""The per-run SSH keys: what the guest gets on its command line and what the client pins."""

from __future__ import annotations

import base64
import shutil
import stat
from pathlib import Path

import pytest

paramiko = pytest.importorskip("paramiko")

from coexist.guest.sshkeys import GuestKeys, parse_dropbear_public_key  # noqa: E402

DROPBEARKEY_Y = """Public key portion is:
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGM1o9qc4WKylt3GqhCOJ7kEgvETzX5bldTsNNeQEGpK root@vm
Fingerprint: SHA256:xMobrnlEyl7CTeN1dJUhZjef0zkJYcb2chQggCET5e8
"""

needs_dropbearkey = pytest.mark.skipif(
    shutil.which("dropbearkey") is None, reason="no dropbearkey (package dropbear-bin)"
)


def test_the_public_key_is_parsed_from_dropbearkey_output() -> None:
    key = parse_dropbear_public_key(DROPBEARKEY_Y)
    assert key.get_name() == "ssh-ed25519"
    assert key.get_base64() == DROPBEARKEY_Y.splitlines()[1].split()[1]


def test_output_without_a_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="no public key line"):
        parse_dropbear_public_key("Failed loading /nonexistent\n")


@needs_dropbearkey
def test_generate_writes_private_keys_readable_by_root_only(tmp_path: Path) -> None:
    keys = GuestKeys.generate(tmp_path)
    for private in (keys.client_key_file, keys.host_key_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert keys.client_key_file.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")


@needs_dropbearkey
def test_the_authorized_key_is_the_client_key(tmp_path: Path) -> None:
    keys = GuestKeys.generate(tmp_path)
    kind, blob, _comment = keys.authorized_key.split()
    assert (kind, blob) == (keys.client_key.get_name(), keys.client_key.get_base64())


@needs_dropbearkey
def test_kernel_args_carry_both_keys_in_base64_without_blanks(tmp_path: Path) -> None:
    keys = GuestKeys.generate(tmp_path)
    args = dict(arg.split("=", 1) for arg in keys.kernel_args().split())
    assert set(args) == {"coexist.authorized_key", "coexist.host_key"}
    assert base64.b64decode(args["coexist.authorized_key"]).decode() == keys.authorized_key
    assert base64.b64decode(args["coexist.host_key"]) == keys.host_key_file.read_bytes()


@needs_dropbearkey
def test_the_pinned_host_key_is_the_one_given_to_the_guest(tmp_path: Path) -> None:
    keys = GuestKeys.generate(tmp_path)
    # dropbear's ed25519 file: string "ssh-ed25519", string (32-byte seed + 32-byte public key)
    host_file = keys.host_key_file.read_bytes()
    assert host_file[4:15] == b"ssh-ed25519"
    assert keys.host_key.asbytes()[-32:] == host_file[-32:]


@needs_dropbearkey
def test_pin_trusts_that_key_only_and_rejects_unknown_hosts(tmp_path: Path) -> None:
    keys = GuestKeys.generate(tmp_path)
    client = paramiko.SSHClient()
    keys.pin(client, "192.168.122.50")
    keys.pin(client, "127.0.0.1", port=2222)
    known = client.get_host_keys()
    assert known.lookup("192.168.122.50") == {"ssh-ed25519": keys.host_key}
    assert known.lookup("[127.0.0.1]:2222") == {"ssh-ed25519": keys.host_key}
    assert isinstance(client._policy, paramiko.RejectPolicy)


@needs_dropbearkey
def test_each_run_gets_new_keys(tmp_path: Path) -> None:
    first, second = GuestKeys.generate(tmp_path / "a"), GuestKeys.generate(tmp_path / "b")
    assert first.authorized_key != second.authorized_key
    assert first.host_key != second.host_key
