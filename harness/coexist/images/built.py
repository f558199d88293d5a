"""The images a lab needs, built (or found in the cache) together: the host's root filesystem for
a release, the guest's kernel and initramfs, and the containers' busybox root filesystem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coexist.base import log
from coexist.images.containerimage import ContainerImage, build_container_image
from coexist.images.guestimage import GuestImage, build_guest_image
from coexist.images.hostimage import HostImage, build_host_image


@dataclass(frozen=True)
class Images:
    host: HostImage
    guest: GuestImage
    container: ContainerImage


def build_images(release: str, packages: Sequence[str] = ()) -> Images:
    """The host image of `release` (with `packages` besides its recipe's: a scenario's
    `[host] packages`), the guest image and the container image, each built unless cached."""
    extra = f", with {', '.join(packages)}" if packages else ""
    with log.step(f"images: host ({release}{extra}), guest and container"):
        return Images(build_host_image(release, packages), build_guest_image(), build_container_image())
