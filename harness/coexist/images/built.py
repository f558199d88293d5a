"""The images a lab needs, built (or found in the cache) together: the host's root filesystem for
a release, the guest's kernel and initramfs, the containers' busybox root filesystem, and for a
scenario that upgrades its host, the packages of the upgrade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coexist.base import log
from coexist.images.containerimage import ContainerImage, build_container_image
from coexist.images.guestimage import GuestImage, build_guest_image
from coexist.images.hostimage import HostImage, build_host_image
from coexist.images.upgradeset import UpgradeSet, prepare_upgrade


@dataclass(frozen=True)
class Images:
    host: HostImage
    guest: GuestImage
    container: ContainerImage
    upgrade: UpgradeSet | None = None   # the host's release to the next one (an upgrade step)


def build_images(release: str, packages: Sequence[str] = (), *, upgrade_to: str | None = None) -> Images:
    """The host image of `release` (with `packages` besides its recipe's: a scenario's
    `[host] packages`), the guest image and the container image, and the packages of the host's
    upgrade to `upgrade_to`, each built unless cached."""
    extra = f", with {', '.join(packages)}" if packages else ""
    upgrade = f", the upgrade to {upgrade_to}" if upgrade_to else ""
    with log.step(f"images: host ({release}{extra}), guest and container{upgrade}"):
        host = build_host_image(release, packages)
        return Images(host, build_guest_image(), build_container_image(),
                      prepare_upgrade(host, upgrade_to) if upgrade_to else None)
