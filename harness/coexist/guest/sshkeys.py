"""The SSH keys of one run: a client key the guest trusts, and a guest host key the client pins.

Both are made fresh per run and handed to the guest on its kernel command line, so the guest
image itself holds no secret and can be cached and shared. Nothing is ever auto-accepted: the
client knows the guest's host key before the first connection.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coexist.base.commands import run

AUTHORIZED_KEY_ARG = "coexist.authorized_key"
HOST_KEY_ARG = "coexist.host_key"
CLIENT_COMMENT = "coexist-client"


@dataclass(frozen=True)
class GuestKeys:
    client_key: paramiko.Ed25519Key  # what paramiko connects with
    client_key_file: Path  # the same key in OpenSSH format, mode 0600, for ssh(1) by hand
    authorized_key: str  # the client's public key as an authorized_keys line
    host_key_file: Path  # the guest's host key in dropbear's format, mode 0600
    host_key: paramiko.PKey  # its public half, pinned by the client

    @classmethod
    def generate(cls, workdir: Path) -> GuestKeys:
        """Make both key pairs under `workdir` (which must not hold keys of an earlier run)."""
        workdir.mkdir(parents=True, exist_ok=True)
        client_key_file, authorized_key = _new_client_key(workdir / "client_ed25519")
        host_key_file = workdir / "guest_host_ed25519.dropbear"
        run(["dropbearkey", "-t", "ed25519", "-f", str(host_key_file)], where="dropbearkey")
        host_key_file.chmod(0o600)
        public = run(["dropbearkey", "-y", "-f", str(host_key_file)], where="dropbearkey").output
        return cls(
            client_key=paramiko.Ed25519Key.from_private_key_file(str(client_key_file)),
            client_key_file=client_key_file,
            authorized_key=authorized_key,
            host_key_file=host_key_file,
            host_key=parse_dropbear_public_key(public),
        )

    def kernel_args(self) -> str:
        """The guest's half of the keys, as the kernel command line arguments its /init reads."""
        authorized = base64.b64encode(self.authorized_key.encode()).decode()
        host = base64.b64encode(self.host_key_file.read_bytes()).decode()
        return f"{AUTHORIZED_KEY_ARG}={authorized} {HOST_KEY_ARG}={host}"

    def pin(self, client: paramiko.SSHClient, hostname: str, port: int = 22) -> None:
        """Make `client` trust the guest's host key at `hostname` (and `port`), and nothing else."""
        # paramiko looks keys up by "[host]:port" when the port is not 22, as OpenSSH does.
        name = hostname if port == 22 else f"[{hostname}]:{port}"
        client.get_host_keys().add(name, self.host_key.get_name(), self.host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())


    def known_hosts(self, hostname: str) -> Path:
        """An OpenSSH known_hosts file pinning the guest's host key at `hostname` (for ssh(1))."""
        path = self.client_key_file.parent / "known_hosts"
        path.write_text(f"{hostname} {self.host_key.get_name()} {self.host_key.get_base64()}\n")
        return path


def _new_client_key(path: Path) -> tuple[Path, str]:
    """Write a new Ed25519 private key (OpenSSH format, 0600) to `path`; return it and its
    public half as an authorized_keys line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {CLIENT_COMMENT}"
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return path, line


def parse_dropbear_public_key(output: str) -> paramiko.PKey:
    """The public key in the output of `dropbearkey -y` (the `ssh-ed25519 AAAA... comment` line)."""
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("ssh-"):
            return paramiko.PKey.from_type_string(fields[0], base64.b64decode(fields[1]))
    raise ValueError(f"no public key line in dropbearkey's output:\n{output}")
