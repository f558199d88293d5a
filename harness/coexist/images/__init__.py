"""Layer 2, images: the host root filesystem per release and the guest kernel and initramfs, built
from the recipes in `files/` (the top-level images/ folder) and cached by recipe. Imports base and
sandbox."""
