"""The two images a lab needs, built (or found in the cache) together: the host's root filesystem
for a release and the guest's kernel and initramfs."""

from __future__ import annotations

from dataclasses import dataclass

from coexist.base import log
from coexist.images.guestimage import GuestImage, build_guest_image
from coexist.images.hostimage import HostImage, build_host_image


@dataclass(frozen=True)
class Images:
    host: HostImage
    guest: GuestImage


def build_images(release: str) -> Images:
    with log.step(f"images: host ({release}) and guest"):
        return Images(build_host_image(release), build_guest_image())
